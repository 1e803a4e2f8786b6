"""Event-wise scoring: was each labelled window alerted, and how many alerts were false.

The rule MGAB's authors define (and the synthetic suite uses): rows before ``warmup`` are
ignored; a window is *found* when at least one alert falls inside it; an alert outside
every window is a false alert; precision = alerts inside windows / all alerts. Unlike
NAB's score this counts alerts as a user sees them (every alert is one notification),
so it is read at the product's own alert threshold, never at a swept one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Rows = Sequence[tuple[int, int]]  # inclusive row ranges, sorted and disjoint

#: Rows of an MGAB series whose alerts are ignored (the benchmark's warm-up).
MGAB_WARMUP = 256


@dataclass(frozen=True)
class EventCounts:
    """Counts over one or more series; ratios are NaN where undefined."""

    windows: int = 0
    found: int = 0
    alerts: int = 0
    alerts_inside: int = 0

    def __add__(self, other: EventCounts) -> EventCounts:
        return EventCounts(
            self.windows + other.windows,
            self.found + other.found,
            self.alerts + other.alerts,
            self.alerts_inside + other.alerts_inside,
        )

    @property
    def false_alerts(self) -> int:
        return self.alerts - self.alerts_inside

    @property
    def precision(self) -> float:
        return self.alerts_inside / self.alerts if self.alerts else math.nan

    @property
    def recall(self) -> float:
        return self.found / self.windows if self.windows else math.nan

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if math.isnan(p) or math.isnan(r) or p + r == 0:
            return 0.0 if self.windows else math.nan
        return 2 * p * r / (p + r)


def inside_windows(n_rows: int, windows: Rows) -> npt.NDArray[np.int64]:
    """Per row, the index of the window it lies in, or -1."""
    which = np.full(n_rows, -1, dtype=np.int64)
    for k, (first, last) in enumerate(windows):
        which[first : last + 1] = k
    return which


def score_events(alerts: npt.NDArray[np.bool_], windows: Rows, warmup: int = 0) -> EventCounts:
    """One series: alerts [T] bool and its windows (row ranges) -> counts.

    A window lying wholly inside the warm-up is not counted (nothing could find it).
    """
    alerts = np.asarray(alerts, dtype=bool).copy()
    alerts[:warmup] = False
    which = inside_windows(len(alerts), windows)
    hit = which[alerts]
    scored = [k for k, (_, last) in enumerate(windows) if last >= warmup]
    found = len(set(hit[hit >= 0].tolist()) & set(scored))
    return EventCounts(len(scored), found, int(alerts.sum()), int((hit >= 0).sum()))
