"""The detector protocol and the policy wrapper: any detector whose state carries the
episode fields can be wrapped, and a step never changes what it was given."""

from __future__ import annotations

import numpy as np

from detectors.base import Alerting, Events, Evidence, StreamDetector
from detectors.policy import EPISODE_FIELDS, OPEN, AlertPolicy

DTYPE = np.dtype([("mean", "<f8"), ("count", "<u4"), *EPISODE_FIELDS])


class JumpDetector:
    """A deliberately tiny detector: score 1 when x leaves its running mean by more than 10."""

    name = "jump"

    def fresh(self, n: int) -> np.ndarray:
        return np.zeros(n, dtype=DTYPE)

    def score(self, events: Events, states: np.ndarray) -> tuple[Evidence, np.ndarray]:
        x = events.x[:, 0].astype(np.float64)
        new = states.copy()
        jump = (states["count"] > 0) & (np.abs(x - states["mean"]) > 10)
        score = jump.astype(np.float32)
        new["count"] = states["count"] + 1
        new["mean"] = states["mean"] + (x - states["mean"]) / new["count"]
        evidence = Evidence(
            score=score,
            sources=("jump",),
            by_source=score[:, None],
            expected=states["mean"][:, None].astype(np.float32),
            top_feature=np.zeros(len(x), np.int64),
        )
        return evidence, new


def test_any_detector_with_episode_fields_can_be_wrapped() -> None:
    detector: StreamDetector = JumpDetector()
    alerting = Alerting(detector, AlertPolicy(quiet_seconds=60))
    states = detector.fresh(2)
    opened = []
    for t, values in enumerate([(1, 1), (1, 1), (50, 1), (60, 1), (1, 1)]):
        x = np.array(values, np.float32)[:, None]
        events = Events(x=x, mask=np.ones_like(x, bool), ts_ms=np.full(2, t * 1000))
        before = states.copy()
        out = alerting.step(events, states)
        np.testing.assert_array_equal(states, before)  # the input states are not touched
        states = out.states
        opened.append(out.action.tolist())
        assert out.sources == ("jump",)
        assert out.by_source.shape == (2, 1)
    # One OPEN at the jump; the second jump is no stronger (score 1 again): no re-alert.
    assert [a[0] for a in opened] == [0, 0, OPEN, 0, 0]
    assert [a[1] for a in opened] == [0, 0, 0, 0, 0]
    assert out.episode_start.tolist() == [2000, 0]
