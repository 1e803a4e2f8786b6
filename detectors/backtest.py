"""Replaying whole series through the detector, exactly as the worker steps it.

Each series is one stream with a fresh state; at row t every series that still has a row t
advances one step in the same batched call the worker makes, so there is no look-ahead and
no per-file tuning — just the detector's ordinary step, many streams at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from detectors.detector import RecurrentDetector


@dataclass
class SeriesResult:
    scores: np.ndarray  # [T]
    expected: np.ndarray  # [T, F]
    top_feature: np.ndarray  # [T]
    alerts: np.ndarray  # [T] bool


def replay(
    detector: RecurrentDetector,
    series: Sequence[np.ndarray],
    progress: Callable[[int, int], None] | None = None,
    ts: Sequence[np.ndarray] | None = None,
) -> list[SeriesResult]:
    """series: list of [T_i, F_i] arrays (F_i <= max_features) -> one result per series.

    ts: per series [T_i] int64 epoch milliseconds, as the worker passes event times (the
    detector's time-of-day profile needs them); None replays without times.
    """
    n, f_max = len(series), detector.max_features
    lengths = np.array([len(s) for s in series])
    results = [
        SeriesResult(
            scores=np.zeros(len(s), np.float32),
            expected=np.zeros((len(s), s.shape[1]), np.float32),
            top_feature=np.zeros(len(s), np.int64),
            alerts=np.zeros(len(s), bool),
        )
        for s in series
    ]
    for s in series:
        if s.ndim != 2 or s.shape[1] > f_max:
            raise ValueError(f"a series must be [T, F] with F <= {f_max}, got {s.shape}")
    if ts is not None and [len(t) for t in ts] != lengths.tolist():
        raise ValueError("ts must give one timestamp per row of each series")
    states = detector.layout.fresh(n)
    total = int(lengths.max()) if n else 0
    for t in range(total):
        live = np.flatnonzero(lengths > t)
        x = np.zeros((len(live), f_max), np.float32)
        mask = np.zeros((len(live), f_max), bool)
        for j, i in enumerate(live.tolist()):
            row = series[i][t]
            x[j, : len(row)] = row
            mask[j, : len(row)] = True
        now = None if ts is None else np.array([ts[i][t] for i in live.tolist()], np.int64)
        out = detector.step(x, mask, states[live], now)
        states[live] = out.states
        for j, i in enumerate(live.tolist()):
            r, k = results[i], series[i].shape[1]
            r.scores[t] = out.scores[j]
            r.expected[t] = out.expected[j, :k]
            r.top_feature[t] = out.top_feature[j]
            r.alerts[t] = out.alerts[j]
        if progress is not None and (t % 200 == 0 or t == total - 1):
            progress(t + 1, total)
    return results
