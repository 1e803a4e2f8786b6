"""Point-wise and per-event figures for labelled streams, as multivariate benchmarks report.

Multivariate anomaly benchmarks (SKAB, the server-machine and water-treatment sets) label
every row and report point-wise precision, recall and F1, the false-alarm rate (share of
normal rows flagged) and the missed-alarm rate (share of anomalous rows not flagged). A
row is flagged when its score reaches the product's alert threshold, so these figures
judge the score itself. Beside them, per anomaly *event*: found when the alert policy
fired at least once inside its window, which is what an on-call person experiences.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PointCounts:
    """Row counts of flagged vs labelled; they add up over streams."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: PointCounts) -> PointCounts:
        return PointCounts(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2.0 * p * r / (p + r) if p + r > 0 else (math.nan if math.isnan(p + r) else 0.0)

    @property
    def false_alarm_rate(self) -> float:
        """FP / normal rows."""
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def missed_alarm_rate(self) -> float:
        """FN / anomalous rows."""
        return _ratio(self.fn, self.fn + self.tp)


def _ratio(a: int, b: int) -> float:
    return a / b if b else math.nan


def point_counts(flagged: np.ndarray, labels: np.ndarray) -> PointCounts:
    """[T] bool flags (score >= threshold) against [T] bool labels."""
    flagged, labels = np.asarray(flagged, bool), np.asarray(labels, bool)
    if flagged.shape != labels.shape:
        raise ValueError(f"{flagged.shape} flags for {labels.shape} labels")
    return PointCounts(
        tp=int((flagged & labels).sum()),
        fp=int((flagged & ~labels).sum()),
        fn=int((~flagged & labels).sum()),
        tn=int((~flagged & ~labels).sum()),
    )


def total(counts: Iterable[PointCounts]) -> PointCounts:
    out = PointCounts()
    for c in counts:
        out = out + c
    return out


def event_found(alerts: np.ndarray, labels: np.ndarray) -> bool:
    """An anomaly event is found when the alert policy fired inside its labelled rows."""
    return bool((np.asarray(alerts, bool) & np.asarray(labels, bool)).any())
