"""`vigil evaluate`: the NAB score and the figures that keep it honest, or the suite.

Three uses:

- ``vigil evaluate --data DIR --scores OUT...``: the NAB score at a swept threshold (as
  before), the score at the product's own alert threshold, and leave-one-category-out;
  ``--compare BEFORE AFTER`` (two score folders) adds where the difference comes from;
- ``--event-wise [--warmup 256]``: MGAB's event-wise figures instead of the NAB score;
- ``--suite synthetic [--size small|full]``: generate, back-test and score the synthetic
  anomaly suite, and print its matrix;
- ``--suite machines [--size small|full]``: the same for the multivariate machines, with
  events found and the point-wise figures per anomaly kind.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console

from detectors.evaluation.nab_scoring import ScoredFile
from pipeline.evaluation.evaluate import EvaluateError, load_corpora, run_evaluate
from pipeline.evaluation.reports import (
    alerted_grid,
    concentration_grids,
    event_grid,
    false_alert_grid,
    loco_grid,
)
from pipeline.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="NAB-layout data folder (<category>/<file>.csv)")
    p.add_argument("--windows", help="windows.json (default: DATA/windows.json)")
    p.add_argument("--scores", nargs="+", default=[], help="backtest output folder(s)")
    p.add_argument("--per-file", action="store_true", help="also print per-file results")
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("BEFORE", "AFTER"),
        help="two score folders (one detector each): which files the difference comes from",
    )
    p.add_argument(
        "--event-wise",
        action="store_true",
        help="MGAB's event-wise scoring at the alert threshold instead of NAB's",
    )
    p.add_argument("--warmup", type=int, default=256, help="rows ignored with --event-wise")
    p.add_argument(
        "--suite",
        choices=["synthetic", "machines"],
        help="run the synthetic anomaly suite, or the multivariate machines",
    )
    p.add_argument("--size", choices=["small", "full"], default="small", help="suite size")
    p.add_argument("--detector", default="vigil", help="with --suite: vigil or a baseline")
    p.add_argument("--work", help="with --suite: keep the generated data and scores here")
    p.add_argument("--jobs", type=int, default=0, help="with --suite: processes (0 = cores)")


def _single(corpora: dict[str, list[ScoredFile]], folder: str) -> tuple[str, list[ScoredFile]]:
    if len(corpora) != 1:
        raise EvaluateError(f"{folder} holds scores of {len(corpora)} detectors; give one each")
    return next(iter(corpora.items()))


def run_nab(args: argparse.Namespace, console: Console) -> int:
    if not args.data:
        raise EvaluateError("give --data (and --scores or --compare), or --suite synthetic")
    folders = [*args.scores, *(args.compare or [])]
    if not folders:
        raise EvaluateError("give --scores and/or --compare with backtest output folders")
    if args.event_wise:
        if args.warmup < 0:
            raise EvaluateError("--warmup must be 0 or more")
        for detector, files in load_corpora(args.data, args.windows, folders).items():
            grid, _ = event_grid(detector, files, args.warmup, args.per_file)
            console.print(grid.to_rich())
        return 0
    if args.scores:
        run_evaluate(args.data, args.windows, args.scores, console, args.per_file)
        corpora = load_corpora(args.data, args.windows, args.scores)
        console.print(alerted_grid(corpora).to_rich())
        console.print(false_alert_grid(corpora).to_rich())
        for detector, files in corpora.items():
            console.print(loco_grid(detector, files).to_rich())
    if args.compare:
        runs = [_single(load_corpora(args.data, args.windows, [f]), f) for f in args.compare]
        if runs[0][0] == runs[1][0]:  # the same detector twice: name the runs by folder
            runs = [(Path(f).name, files) for f, (_, files) in zip(args.compare, runs, strict=True)]
        grid, verdict = concentration_grids(runs[0], runs[1])
        console.print(grid.to_rich())
        console.print(verdict)
    return 0


def run_evaluate_command(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if args.suite is None:
        return run_nab(args, console)
    if args.suite == "machines":
        from pipeline.evaluation.machines import run_machines_command

        work = Path(args.work) if args.work else None
        if work is not None:
            work.mkdir(parents=True, exist_ok=True)
        return run_machines_command(settings, args.size, work, args.detector, args.jobs, console)
    from pipeline.evaluation.suite import run_suite_command

    if args.work:
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        return run_suite_command(settings, args.size, work, args.detector, args.jobs, console)
    with tempfile.TemporaryDirectory(prefix="vigil-suite-") as tmp:
        return run_suite_command(settings, args.size, Path(tmp), args.detector, args.jobs, console)
