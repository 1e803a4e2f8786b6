"""What every Vigil stream detector is: one pure batched step, and the alert policy around it.

A detector does River's `score_one` then `learn_one` in one call, batched like the worker's
rounds: it takes one event per stream plus the streams' states and returns how anomalous
each event is (higher = rarer) and the new states. It judges each event only against what
it learnt *before* that event, never mutates its inputs and does no I/O, so one call
serves the worker, the backtest and the tests alike.

Turning evidence into alerts is a separate stage, `Alerting`, as River's `anomaly.filter`
thresholds any detector and Merlion composes score -> calibration -> threshold: the
episode policy of `detectors.policy` runs on any detector's evidence. Its memory lives in
fields every detector's state record carries (`detectors.policy.EPISODE_FIELDS`), so a
stream's whole state is still one record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from detectors.policy import ESCALATE, OPEN, AlertPolicy, decide


@dataclass(frozen=True)
class Events:
    """One event per stream of a batch."""

    x: np.ndarray  # [B, F] float32 values in the stream's own units (0 where mask is False)
    mask: np.ndarray  # [B, F] bool: the feature slots the stream uses
    ts_ms: np.ndarray  # [B] int64 epoch milliseconds of each event


@dataclass(frozen=True)
class Evidence:
    """How anomalous each event is, overall and per evidence source, on one scale."""

    score: np.ndarray  # [B] float32 in [0, 1], higher = rarer; the policy reads this
    sources: tuple[str, ...]  # names of the evidence sources, e.g. "surprise@1h"
    by_source: np.ndarray  # [B, K] float32, each source's own score on the same scale
    expected: np.ndarray  # [B, F] what the detector expected, in the stream's units
    top_feature: np.ndarray  # [B] int64 the feature that contributes most
    rewarmed: np.ndarray | None = None  # [B] bool, recurrent state rebuilt (new model)

    @property
    def fired(self) -> np.ndarray:
        """[B] index into `sources` of the strongest source of each event."""
        if self.by_source.shape[1] == 0:
            return np.zeros(len(self.score), dtype=np.int64)
        return np.asarray(self.by_source.argmax(axis=1), dtype=np.int64)


class StreamDetector(Protocol):
    """A batched, pure stream detector (see the module docstring)."""

    name: str

    def fresh(self, n: int) -> np.ndarray:
        """States for n streams never seen before (a structured array with EPISODE_FIELDS)."""
        ...

    def score(self, events: Events, states: np.ndarray) -> tuple[Evidence, np.ndarray]:
        """Score each event against its stream's past, then learn it -> (evidence, states)."""
        ...


@dataclass
class StepOutput:
    """A detector's evidence plus the policy's decision, per event of the batch."""

    scores: np.ndarray  # [B] float32 in [0, 1]
    expected: np.ndarray  # [B, F] the expectation for x_t, in the stream's own units
    top_feature: np.ndarray  # [B] index of the feature with the largest error
    alerts: np.ndarray  # [B] bool: the policy opened or escalated an episode
    action: np.ndarray  # [B] int8 detectors.policy.NONE / OPEN / ESCALATE / RESOLVE
    episode_start: np.ndarray  # [B] int64 epoch ms the stream's episode began (0 = none)
    episode_peak: np.ndarray  # [B] float32 the episode's largest score so far
    sources: tuple[str, ...]  # names of the evidence sources
    by_source: np.ndarray  # [B, K] each source's score: WHICH evidence fired, and how much
    rewarmed: np.ndarray  # [B] bool, the state came from another model version
    states: np.ndarray  # [B] new states


class Alerting:
    """Any StreamDetector followed by the episode policy: events -> StepOutput."""

    def __init__(self, detector: StreamDetector, policy: AlertPolicy) -> None:
        self.detector = detector
        self.policy = policy

    def step(self, events: Events, states: np.ndarray) -> StepOutput:
        evidence, new_states = self.detector.score(events, states)
        return apply_policy(evidence, events.ts_ms, new_states, self.policy)


def apply_policy(
    evidence: Evidence, ts_ms: np.ndarray, states: np.ndarray, policy: AlertPolicy
) -> StepOutput:
    """The episode policy on a detector's evidence; writes the episode fields of `states`
    (the detector's fresh output, so nothing the caller holds is touched)."""
    action, episodes = decide(evidence.score, ts_ms, states, policy)
    for name in episodes.dtype.names or ():
        states[name] = episodes[name]
    b = len(evidence.score)
    return StepOutput(
        scores=evidence.score,
        expected=evidence.expected,
        top_feature=evidence.top_feature,
        alerts=(action == OPEN) | (action == ESCALATE),
        action=action,
        episode_start=episodes["episode_start"],
        episode_peak=episodes["episode_peak"],
        sources=evidence.sources,
        by_source=evidence.by_source,
        rewarmed=evidence.rewarmed if evidence.rewarmed is not None else np.zeros(b, bool),
        states=states,
    )
