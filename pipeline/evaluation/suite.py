"""`vigil evaluate --suite synthetic`: generate the suite, back-test it, print the matrix.

The suite (`detectors.evaluation.synthetic_suite`) is written as a NAB-layout corpus
(``<base signal>/<kind>-<seed>.csv`` plus ``windows.json``), replayed by exactly the code
`vigil backtest --format nab` runs, and the score files it writes are read back: an alert
is a row whose NAB-layout score is positive, i.e. where the detector's alert policy fired.
So the suite measures the alerts a deployment would raise, through the same path as NAB.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from rich.console import Console

from detectors.evaluation.anomaly_kinds import FAILURE_MODES, GENERATED
from detectors.evaluation.suite_matrix import (
    FALSE_ALERT_BAR,
    RECALL_BAR,
    CaseOutcome,
    case_outcome,
    false_alerts_per_week,
    recall_by,
    verdict,
)
from detectors.evaluation.synthetic_suite import (
    NORMAL,
    Case,
    generate_case,
    suite_cases,
)
from pipeline.evaluation.tables import Grid, fmt
from pipeline.settings import Settings


def _iso(ms: int) -> str:
    return str(np.datetime64(int(ms), "ms"))


def write_dataset(
    series: Sequence[tuple[str, np.ndarray, np.ndarray, Sequence[tuple[int, int]]]], root: Path
) -> None:
    """Generated streams as a NAB-layout corpus: one CSV per (file, ts_ms, values [T, F],
    windows) and ``windows.json``; the suites and the machine suite write the same way."""
    windows: dict[str, list[list[str]]] = {}
    for file, ts_ms, values, spans in series:
        path = root / file
        path.parent.mkdir(parents=True, exist_ok=True)
        names = ["value"] + [f"value_{k + 1}" for k in range(1, values.shape[1])]
        stamps = ts_ms.astype("datetime64[ms]").astype("datetime64[s]").astype(str)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", *names])
            for stamp, row in zip(stamps, values.tolist(), strict=True):
                writer.writerow([stamp, *(f"{v:.6g}" for v in row)])
        windows[file] = [[_iso(a), _iso(b)] for a, b in spans]
    (root / "windows.json").write_text(json.dumps(windows, indent=1, sort_keys=True))


def run_suite(
    settings: Settings,
    size: str,
    work: Path,
    detector: str = "vigil",
    jobs: int = 0,
    seed: int = 0,
    reuse: bool = False,
) -> tuple[list[CaseOutcome], float]:
    """Generate, back-test and score the suite in ``work``; -> (outcomes, seconds).

    ``reuse``: score the backtest already in ``work`` instead of running it again."""
    from pipeline.evaluation.backtest import find_files, run_files
    from pipeline.evaluation.evaluate import read_scores_dir

    started = time.perf_counter()
    series = [generate_case(c) for c in suite_cases(size, seed)]
    if not (reuse and any((work / "scores").rglob(f"{detector}_*.csv"))):
        write_dataset([(s.case.file, s.ts_ms, s.values, s.windows) for s in series], work / "data")
        files = [f for f in find_files([work / "data"]) if f.path.suffix == ".csv"]
        run_files(settings, files, work / "scores", fmt="nab", detector=detector, jobs=jobs)
    found = read_scores_dir(work / "scores", [s.case.file for s in series])[detector]
    outcomes = []
    for s in series:
        stamps, scores = found[s.case.file]
        if not np.array_equal(stamps.astype("datetime64[ms]").astype(np.int64), s.ts_ms):
            raise ValueError(f"{s.case.file}: the score file's timestamps are not the data's")
        outcomes.append(case_outcome(s, scores > 0))
    return outcomes, time.perf_counter() - started


Column = Callable[[Case], str]
#: How the matrix's columns group the cases: the small suite's few base signals fit one
#: table; the full suite's 36 get one table per dimension.
_SMALL: tuple[tuple[str, Column], ...] = (("base signal", lambda c: c.base.name),)
_FULL: tuple[tuple[str, Column], ...] = (
    ("sampling rate", lambda c: c.base.sampling),
    ("noise", lambda c: c.base.noise),
    ("seasonality", lambda c: c.base.season),
    ("earlier large anomaly", lambda c: "with" if c.prior else "without"),
)


def suite_grids(outcomes: Sequence[CaseOutcome], size: str) -> list[Grid]:
    """Recall per kind x column, false alerts per stream-week per base signal, the bar."""
    grids = []
    for title, column in _SMALL if size == "small" else _FULL:
        recall = recall_by(outcomes, column)
        labels = sorted({label for row in recall.values() for label in row} - {"all"})
        grid = Grid(f"Recall per kind, by {title}", ["kind", *labels, "all", "FA/stream-week"])
        outside = false_alerts_per_week(outcomes, lambda c: c.kind, normal_only=False)
        for kind in (*GENERATED, *FAILURE_MODES):
            row = recall.get(kind, {})
            cells = [
                f"{fmt(row[label].recall)} ({row[label].cases})" if label in row else "n/a"
                for label in [*labels, "all"]
            ]
            grid.add(kind, *cells, fmt(outside.get(kind, float("nan"))))
        grid.caption = (
            "cell: recall (cases); n/a: kind not generated there. FA/stream-week: alerts "
            "outside every labelled window of that kind's streams, per stream-week."
        )
        grids.append(grid)
    per_base = false_alerts_per_week(outcomes, lambda c: c.base.name)
    fa = Grid("False alerts per stream-week on normal streams", ["base signal", "FA/stream-week"])
    for base, value in per_base.items():
        fa.add(base, fmt(value))
    grids.append(fa)
    v = verdict(outcomes)
    bar = Grid("Bar (issue 12)", ["criterion", "measured", "bar", "met"])
    kinds_met = "yes" if v.kinds_at_bar >= 8 else "no"
    bar.add(f"generated kinds at recall >= {RECALL_BAR:g}", str(v.kinds_at_bar), ">= 8", kinds_met)
    fa_met = "yes" if v.worst_false_alerts <= FALSE_ALERT_BAR else "no"
    worst = fmt(v.worst_false_alerts)
    bar.add("worst false alerts / stream-week", worst, f"<= {FALSE_ALERT_BAR:g}", fa_met)
    bar.caption = f"false alerts on the {NORMAL!r} streams of each base signal"
    grids.append(bar)
    return grids


def run_suite_command(
    settings: Settings, size: str, work: Path, detector: str, jobs: int, console: Console
) -> int:
    outcomes, seconds = run_suite(settings, size, work, detector, jobs)
    for grid in suite_grids(outcomes, size):
        console.print(grid.to_rich())
    console.print(f"{detector}: {len(outcomes)} synthetic streams ({size}) in {seconds:.0f} s")
    return 0
