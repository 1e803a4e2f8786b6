"""The figures `vigil evaluate` adds beside the swept NAB score, as `Grid` tables.

- at the product's alert threshold: the alerts a deployment raises (a positive score in
  a `vigil backtest --format nab` file), not a threshold chosen with the labels;
- leave-one-category-out: each category scored at a threshold swept on the others;
- gain concentration: which files a difference between two runs comes from;
- event-wise (MGAB's rule): windows found, precision over alerts, after a warm-up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from detectors.evaluation.comparison import (
    ALERTED,
    NOISE_FILES,
    category,
    fold_summary,
    gain_concentration,
    leave_one_category_out,
)
from detectors.evaluation.event_scoring import EventCounts, inside_windows, score_events
from detectors.evaluation.nab_scoring import PROFILES, ScoredFile, score_corpus, sweep_threshold
from pipeline.evaluation.tables import Grid, fmt


def alerted_grid(corpora: dict[str, list[ScoredFile]]) -> Grid:
    grid = Grid(
        "NAB score at the product's alert threshold (every alert raised, no sweep)",
        ["detector", *PROFILES, "TP", "FN", "FP"],
        caption="a row counts as a detection where its NAB-layout score is positive: for "
        "`vigil backtest --format nab` output, exactly where the alert policy fired",
    )
    for detector, files in corpora.items():
        results = [score_corpus(files, ALERTED, p) for p in PROFILES.values()]
        r = results[0]
        grid.add(detector, *(fmt(x.score, 1) for x in results), str(r.tp_windows),
                 str(r.fn_windows), str(r.fp_detections))  # fmt: skip
    return grid


def false_alert_grid(corpora: dict[str, list[ScoredFile]]) -> Grid:
    """Alerts outside every window per stream-week, per category: the false-alert rate a
    user of each kind of stream would live with (issue 12 asks it be near one target on
    every category, not just on average)."""
    detectors = list(corpora)
    grid = Grid(
        "False alerts per stream-week at the alert threshold, per category",
        ["category", *detectors],
        caption="alerts outside every labelled window / stream-weeks of data, the "
        "probationary rows included (a young stream's alerts count too)",
    )
    week = np.timedelta64(7, "D")
    for name in categories(next(iter(corpora.values()))):
        cells = []
        for detector in detectors:
            files = [f for f in corpora[detector] if category(f.name) == name]
            alerts = sum(
                int(((f.scores > 0) & (inside_windows(len(f.scores), f.windows) < 0)).sum())
                for f in files
            )
            weeks = sum(float((f.timestamps[-1] - f.timestamps[0]) / week) for f in files)
            cells.append(fmt(alerts / weeks if weeks else float("nan")))
        grid.add(name, *cells)
    return grid


def loco_grid(detector: str, files: Sequence[ScoredFile]) -> Grid:
    """One row per held-out category, then the mean, spread and range."""
    grid = Grid(
        f"Leave-one-category-out: {detector}",
        ["held-out category", *PROFILES, "FP (standard)"],
        caption="each category scored at the threshold swept on all the others; "
        "'-': the category has no anomaly window (its false detections still count)",
    )
    folds = {name: leave_one_category_out(files, p) for name, p in PROFILES.items()}
    for i, fold in enumerate(folds["standard"]):
        cells = [fmt(folds[name][i].score, 1) for name in PROFILES]
        grid.add(fold.category, *cells, str(fold.false_detections))
    summaries = {name: fold_summary(f) for name, f in folds.items()}
    grid.add("mean", *(fmt(s[0], 1) for s in summaries.values()), "")
    grid.add("std", *(fmt(s[1], 1) for s in summaries.values()), "")
    grid.add("min .. max", *(f"{fmt(s[2], 1)} .. {fmt(s[3], 1)}" for s in summaries.values()), "")
    return grid


def concentration_grids(
    before: tuple[str, list[ScoredFile]], after: tuple[str, list[ScoredFile]], rows: int = 12
) -> tuple[Grid, str]:
    """Per-file deltas (standard profile, each run at its own swept threshold) + verdict."""
    profile = PROFILES["standard"]
    results = []
    for _, files in (before, after):
        threshold, _ = sweep_threshold(files, profile)
        results.append(score_corpus(files, threshold, profile))
    c = gain_concentration(results[0], results[1])
    grid = Grid(
        f"Gain concentration: {before[0]} -> {after[0]} (standard profile, NAB points)",
        ["file", before[0], after[0], "delta"],
        caption=f"the {rows} largest changes of {len(c.deltas)} files; deltas add up to the total",
    )
    for d in c.deltas[:rows]:
        grid.add(d.name, fmt(d.before), fmt(d.after), f"{d.delta:+.2f}")
    grid.add("total", fmt(results[0].score), fmt(results[1].score), f"{c.total:+.2f}")
    word = "gain" if c.total >= 0 else "loss"
    if c.total == 0 or math.isnan(c.share):
        verdict = "no difference in score"
    else:
        verdict = f"{c.carriers} file(s) carry {100 * c.share:.0f}% of the {word} of {c.total:+.2f}"
        if c.noise:
            verdict += f": carried by <= {NOISE_FILES} files, so noise, not progress"
    return grid, verdict


def event_grid(
    detector: str, files: Sequence[ScoredFile], warmup: int, per_file: bool = True
) -> tuple[Grid, EventCounts]:
    """MGAB's event-wise figures at the product's alert threshold."""
    grid = Grid(
        f"Event-wise at the alert threshold: {detector} (warm-up {warmup} rows ignored)",
        ["file", "windows", "found", "alerts", "inside", "precision", "recall", "F1"],
        caption="found: windows with >= 1 alert inside; precision: alerts inside windows / "
        "all alerts",
    )
    total = EventCounts()
    for f in files:
        counts = score_events(np.asarray(f.scores) > 0, f.windows, warmup)
        total = total + counts
        if per_file:
            grid.add(f.name, *_event_cells(counts))
    grid.add("all", *_event_cells(total))
    return grid, total


def _event_cells(c: EventCounts) -> list[str]:
    return [str(c.windows), str(c.found), str(c.alerts), str(c.alerts_inside),
            fmt(c.precision), fmt(c.recall), fmt(c.f1)]  # fmt: skip


def categories(files: Sequence[ScoredFile]) -> list[str]:
    return sorted({category(f.name) for f in files})
