"""Replaying whole series through the detector, exactly as the worker steps it.

Each series is one stream with a fresh state; every stream advances one row per batched
call, the same call the worker makes, so there is no look-ahead and no per-file tuning —
just the detector's ordinary step, many streams at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from detectors.base import StepOutput


class Replayable(Protocol):
    """What the replay steps: any stream detector with the alert policy applied (the
    recurrent detector, `detectors.evaluation.river_baselines.RiverStreams`)."""

    @property
    def max_features(self) -> int: ...

    def fresh(self, n: int) -> np.ndarray: ...

    def step(
        self, x: np.ndarray, mask: np.ndarray, states: np.ndarray, ts_ms: np.ndarray | None
    ) -> StepOutput: ...


@dataclass
class SeriesResult:
    scores: np.ndarray  # [T]
    expected: np.ndarray  # [T, F]
    top_feature: np.ndarray  # [T]
    alerts: np.ndarray  # [T] bool


class Replay:
    """Many series replayed as streams of one detector, resumable at a point in time.

    Each series is one stream with a fresh state; every call to `run` advances each
    stream through its next rows in one batched `step` per row position, exactly as the
    worker steps a batch. `run(until_ms)` stops every stream before its first event at or
    after ``until_ms``, so a caller can act between two instants (train a model, swap
    it in with `swap`) and go on: the states carry over, and a stream whose state was
    made by another model version is re-warmed by the detector on its next step.
    """

    def __init__(
        self,
        detector: Replayable,
        series: Sequence[np.ndarray],
        ts: Sequence[np.ndarray] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        f_max = detector.max_features
        for s in series:
            if s.ndim != 2 or s.shape[1] > f_max:
                raise ValueError(f"a series must be [T, F] with F <= {f_max}, got {s.shape}")
        self.lengths = np.array([len(s) for s in series], dtype=np.int64)
        if ts is not None and [len(t) for t in ts] != self.lengths.tolist():
            raise ValueError("ts must give one timestamp per row of each series")
        self.detector = detector
        self.widths = [s.shape[1] for s in series]
        self.progress = progress
        n, length = len(series), int(self.lengths.max()) if len(series) else 0
        f_used = max(self.widths, default=1)
        # One padded block, so a step slices arrays instead of looping over streams.
        self.x = np.zeros((n, length, f_used), np.float32)
        self.mask = np.zeros(self.x.shape, bool)
        self.ts = None if ts is None else np.zeros((n, length), np.int64)
        for i, s in enumerate(series):
            self.x[i, : len(s), : s.shape[1]] = s
            self.mask[i, : len(s), : s.shape[1]] = True
            if self.ts is not None and ts is not None:
                self.ts[i, : len(s)] = ts[i]
        self.scores = np.zeros((n, length), np.float32)
        self.expected = np.zeros(self.x.shape, np.float32)
        self.top = np.zeros((n, length), np.int64)
        self.alerts = np.zeros((n, length), bool)
        self.states = detector.fresh(n)
        self.pos = np.zeros(n, np.int64)  # each stream's next row

    def swap(self, detector: Replayable) -> None:
        """Serve another model from the next step on (the worker's hot swap)."""
        self.detector = detector

    def run(self, until_ms: int | None = None) -> None:
        """Step every stream through its rows before ``until_ms`` (all rows when None)."""
        f_max, f_used = self.detector.max_features, self.x.shape[2]
        rows = np.arange(len(self.pos))
        steps = 0
        while True:
            live = rows[self.pos < self.lengths]
            if until_ms is not None and self.ts is not None:
                live = live[self.ts[live, self.pos[live]] < until_ms]
            if len(live) == 0:
                return
            at = self.pos[live]
            x = np.zeros((len(live), f_max), np.float32)
            mask = np.zeros((len(live), f_max), bool)
            x[:, :f_used], mask[:, :f_used] = self.x[live, at], self.mask[live, at]
            now = None if self.ts is None else self.ts[live, at]
            out = self.detector.step(x, mask, self.states[live], now)
            self.states[live] = out.states
            self.scores[live, at], self.alerts[live, at] = out.scores, out.alerts
            self.expected[live, at], self.top[live, at] = out.expected[:, :f_used], out.top_feature
            self.pos[live] += 1
            steps += 1
            if self.progress is not None and steps % 200 == 0:
                self.progress(int(self.pos.sum()))

    def results(self) -> list[SeriesResult]:
        """What every stream got so far, one result per series, trimmed to its rows."""
        return [
            SeriesResult(
                scores=self.scores[i, :length],
                expected=self.expected[i, :length, : self.widths[i]],
                top_feature=self.top[i, :length],
                alerts=self.alerts[i, :length],
            )
            for i, length in enumerate(self.lengths.tolist())
        ]


def replay(
    detector: Replayable,
    series: Sequence[np.ndarray],
    progress: Callable[[int], None] | None = None,
    ts: Sequence[np.ndarray] | None = None,
) -> list[SeriesResult]:
    """series: list of [T_i, F_i] arrays (F_i <= max_features) -> one result per series.

    ts: per series [T_i] int64 epoch milliseconds, as the worker passes event times (the
    detector's time-of-day profile needs them); None replays without times. progress
    gets the number of rows replayed so far, now and then.
    """
    run = Replay(detector, series, ts, progress)
    run.run()
    return run.results()
