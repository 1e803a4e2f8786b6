"""The synthetic suite's result: recall per kind and false alerts per stream-week.

Each case gives one outcome: whether its target window got an alert, and how many alerts
fell outside every labelled window over how many weeks. Recall is grouped by kind and by
any property of the base signal; false alerts per stream-week are read on the ``normal``
streams of each base signal (a stream with nothing wrong) and, separately, outside the
windows of every kind's streams (kind B's daily spikes, kind C's bursts are normal).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detectors.evaluation.anomaly_kinds import GENERATED
from detectors.evaluation.event_scoring import inside_windows
from detectors.evaluation.nab_scoring import window_rows
from detectors.evaluation.synthetic_suite import NORMAL, Case, SuiteSeries

WEEK_MS = 7 * 86_400_000
#: The issue's bar: recall at least this on most generated kinds ...
RECALL_BAR = 0.8
#: ... at no more than this many false alerts per stream-week on every base signal.
FALSE_ALERT_BAR = 1.0


@dataclass(frozen=True)
class CaseOutcome:
    case: Case
    found: bool | None  # None for a normal stream
    false_alerts: int  # alerts outside every labelled window
    weeks: float  # the stream's length in weeks


def case_outcome(series: SuiteSeries, alerts: npt.NDArray[np.bool_]) -> CaseOutcome:
    """One generated stream and the alerts a detector raised on it, row for row."""
    if len(alerts) != len(series.ts_ms):
        raise ValueError(f"{series.case.file}: {len(alerts)} alerts for {len(series.ts_ms)} rows")
    stamps = series.ts_ms.astype("datetime64[ms]")
    windows = [(np.datetime64(a, "ms"), np.datetime64(b, "ms")) for a, b in series.windows]
    rows = window_rows(stamps, windows)
    which = inside_windows(len(alerts), rows)
    # window_rows sorts; the suite's windows are already in time order
    found = None if series.target < 0 else bool((which[alerts] == series.target).any())
    span = float(series.ts_ms[-1] - series.ts_ms[0]) if len(series.ts_ms) > 1 else 0.0
    return CaseOutcome(series.case, found, int((alerts & (which < 0)).sum()), span / WEEK_MS)


@dataclass(frozen=True)
class Cell:
    found: int = 0
    cases: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.cases if self.cases else math.nan


def recall_by(
    outcomes: Sequence[CaseOutcome], column: Callable[[Case], str]
) -> dict[str, dict[str, Cell]]:
    """kind -> column label -> found/cases, plus an ``all`` column."""
    table: dict[str, dict[str, Cell]] = defaultdict(dict)
    for o in outcomes:
        if o.found is None:
            continue
        for label in (column(o.case), "all"):
            cell = table[o.case.kind].get(label, Cell())
            table[o.case.kind][label] = Cell(cell.found + int(o.found), cell.cases + 1)
    return dict(table)


def false_alerts_per_week(
    outcomes: Sequence[CaseOutcome], group: Callable[[Case], str], normal_only: bool = True
) -> dict[str, float]:
    """Alerts outside windows per stream-week, per group (e.g. per base signal)."""
    alerts: dict[str, int] = defaultdict(int)
    weeks: dict[str, float] = defaultdict(float)
    for o in outcomes:
        if normal_only and o.case.kind != NORMAL:
            continue
        alerts[group(o.case)] += o.false_alerts
        weeks[group(o.case)] += o.weeks
    return {g: alerts[g] / weeks[g] if weeks[g] else math.nan for g in sorted(alerts)}


@dataclass(frozen=True)
class Verdict:
    """The issue's bar on the generated kinds."""

    kinds_at_bar: int  # generated kinds with recall >= RECALL_BAR
    worst_false_alerts: float  # the highest false alerts per stream-week on normal streams

    @property
    def met(self) -> bool:
        return self.kinds_at_bar >= 8 and self.worst_false_alerts <= FALSE_ALERT_BAR


def verdict(outcomes: Sequence[CaseOutcome]) -> Verdict:
    recall = recall_by(outcomes, lambda c: c.base.name)
    at_bar = sum(1 for k in GENERATED if k in recall and recall[k]["all"].recall >= RECALL_BAR)
    per_base = false_alerts_per_week(outcomes, lambda c: c.base.name)
    worst = max(per_base.values(), default=math.nan)
    return Verdict(at_bar, worst)
