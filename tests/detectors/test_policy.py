"""The episode policy: one alert at onset, escalation only when clearly stronger, resolve
after a quiet duration; streams independent; inputs untouched."""

from __future__ import annotations

import numpy as np

from detectors.policy import (
    EPISODE_DTYPE,
    ESCALATE,
    NONE,
    OPEN,
    RESOLVE,
    AlertPolicy,
    decide,
)

POLICY = AlertPolicy(threshold=0.5, clear=0.3, quiet_seconds=600.0, escalate_by=0.1)


def run(scores: list[float], policy: AlertPolicy = POLICY, every_s: int = 60) -> list[int]:
    """One stream's scores, one event every `every_s` seconds -> the action per event."""
    states = np.zeros(1, dtype=EPISODE_DTYPE)
    actions = []
    for i, s in enumerate(scores):
        action, states = decide(
            np.array([s], np.float32), np.array([i * every_s * 1000]), states, policy
        )
        actions.append(int(action[0]))
    return actions


def test_one_alert_while_the_score_hovers_around_the_threshold() -> None:
    actions = run([0.1, 0.6, 0.45, 0.6, 0.35, 0.62, 0.2])
    assert actions == [NONE, OPEN, NONE, NONE, NONE, NONE, NONE]


def test_a_clearly_stronger_score_escalates_and_raises_the_bar() -> None:
    actions = run([0.6, 0.65, 0.75, 0.8, 0.95])
    assert actions == [OPEN, NONE, ESCALATE, NONE, ESCALATE]


def test_the_episode_resolves_after_the_quiet_duration_then_a_new_one_opens() -> None:
    # quiet 600 s = 10 events of 60 s below `clear`: the 11th event after the last loud one
    # carries the RESOLVE; the next strong score opens a new episode.
    scores = [0.9] + [0.1] * 10 + [0.1, 0.6]
    actions = run(scores)
    assert actions[0] == OPEN
    assert actions[1:10] == [NONE] * 9
    assert actions[10] == RESOLVE
    assert actions[12] == OPEN


def test_quiet_is_time_not_events() -> None:
    # Hourly events: the first event after a loud one is already past 600 s of quiet.
    assert run([0.9, 0.1, 0.9], every_s=3600) == [OPEN, RESOLVE, OPEN]
    # A moderate score (>= clear) keeps the episode alive: no second alert.
    assert run([0.9] + [0.35] * 30 + [0.6]) == [OPEN] + [NONE] * 31


def test_a_loud_event_after_a_long_gap_continues_the_episode() -> None:
    """On an hourly stream every event comes quiet_seconds after the previous one: a loud
    event must carry its episode on, not end it and open another (one alert per hour of
    a lasting incident); the first quiet event after the quiet time resolves it."""
    hourly = AlertPolicy(quiet_seconds=3600.0)
    assert run([0.9, 0.8, 0.7, 0.9, 0.1], hourly, every_s=3600) == [OPEN] + [NONE] * 3 + [RESOLVE]
    assert run([0.9, 0.6, 1.0], hourly, every_s=3600) == [OPEN, NONE, ESCALATE]


def test_streams_are_independent_and_the_input_is_not_changed() -> None:
    states = np.zeros(3, dtype=EPISODE_DTYPE)
    states["flags"][2] = 1  # already in an episode with peak 0.85
    states["episode_peak"][2] = 0.85
    states["episode_start"][2] = states["episode_loud"][2] = 1000
    before = states.copy()
    action, new = decide(np.array([0.9, 0.1, 0.9], np.float32), np.full(3, 2000), states, POLICY)
    assert action.tolist() == [OPEN, NONE, NONE]
    assert new["flags"].tolist() == [1, 0, 1]
    assert new["episode_start"].tolist() == [2000, 0, 1000]
    np.testing.assert_array_equal(states, before)
