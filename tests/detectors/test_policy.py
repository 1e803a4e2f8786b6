"""The alert policy: warm-up, threshold, hysteresis and cooldown, one stream at a time."""

from __future__ import annotations

import numpy as np

from detectors.policy import AlertPolicy, apply_policy


def run(scores: list[float], policy: AlertPolicy, start_count: int = 1000) -> list[bool]:
    """Feed one stream's scores through the policy; returns where it fired."""
    flags = np.zeros(1, np.uint8)
    cooldown = np.zeros(1, np.uint16)
    fired = []
    for i, s in enumerate(scores):
        count = np.array([start_count + i + 1])
        alert, flags, cooldown = apply_policy(np.array([s]), count, flags, cooldown, policy)
        fired.append(bool(alert[0]))
    return fired


def test_warmup_never_alerts() -> None:
    policy = AlertPolicy(threshold=0.5, clear=0.3, cooldown=0, warmup=10)
    fired = run([1.0] * 10 + [0.0, 1.0], policy, start_count=0)
    assert not any(fired[:10])
    assert fired[11]


def test_hysteresis_gives_one_alert_per_episode() -> None:
    policy = AlertPolicy(threshold=0.5, clear=0.3, cooldown=0, warmup=0)
    # Hovers around the threshold but never falls to `clear`: one alert.
    fired = run([0.1, 0.6, 0.45, 0.6, 0.4, 0.7, 0.2, 0.6], policy)
    assert fired == [False, True, False, False, False, False, False, True]


def test_cooldown_blocks_a_new_episode_for_that_many_events() -> None:
    policy = AlertPolicy(threshold=0.5, clear=0.3, cooldown=5, warmup=0)
    fired = run([0.9, 0.0, 0.9, 0.0, 0.9, 0.0, 0.9, 0.0], policy)
    assert fired == [True, False, False, False, False, False, True, False]


def test_streams_in_a_batch_are_independent() -> None:
    policy = AlertPolicy(threshold=0.5, clear=0.3, cooldown=3, warmup=0)
    scores = np.array([0.9, 0.1, 0.9])
    flags = np.array([0, 0, 1], np.uint8)  # the third is already in an alert episode
    cooldown = np.array([0, 0, 0], np.uint16)
    alert, new_flags, new_cd = apply_policy(scores, np.full(3, 100), flags, cooldown, policy)
    assert alert.tolist() == [True, False, False]
    assert new_flags.tolist() == [1, 0, 1]
    assert new_cd.tolist() == [3, 0, 0]
