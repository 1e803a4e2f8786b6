"""`vigil backtest`: replay CSV files through exactly the detector the worker serves.

Each file is one stream with a fresh state, read in row order with no look-ahead, and every
file gets the same parameters (the worker's, from Settings). Files are split into one group
per process; inside a process a group is replayed batched (`detectors.evaluation.replay.replay`),
the same batched step the worker makes, so a backtest of thousands of rows per file takes
seconds. `--detector hst|snarimax` sends the River baselines through the same reading,
replay, alert policy and writing, so every figure compared in `vigil evaluate` was produced
the same way.

Output, one row per input row:
- plain: ``OUT/<path relative to the argument>`` with ``timestamp,<values>,anomaly_score,
  expected,alert`` (``expected_<column>`` per column for a multivariate file); ``alert`` is
  1 where the worker's alert policy fires;
- nab: ``OUT/<category>/<detector>_<file>`` with ``timestamp,value,anomaly_score,label``
  (label 0), the layout `vigil evaluate` and NAB read. For Vigil, anomaly_score there is
  the score on the rows where the alert policy fires and 0 elsewhere: NAB counts every
  row at or above its threshold as a detection, and what Vigil reports to a user is the
  policy's alerts (an episode's onset and escalations), not every surprising row.
  The River baselines go through the same interface, replay and policy
  (`detectors.evaluation.river_baselines.RiverStreams`), so their files hold alerts too.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from queue import Empty
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.contracts.csvfile import find_csv_files, read_csv_table
from pipeline.errors import UserError
from pipeline.settings import Settings

VIGIL = "vigil"


class BacktestError(UserError):
    """A bad path, or a CSV without what a backtest needs: the CLI prints it as one line."""


@dataclass(frozen=True)
class InputFile:
    """A CSV to replay and where its results go."""

    path: Path
    relative: Path  # below the argument it was found in (just the name for a file argument)

    @property
    def category(self) -> str:
        """NAB's category: the folder the file sits in."""
        return self.path.resolve().parent.name


@dataclass
class Series:
    """One CSV file as read: the strings written back out, and the values as floats."""

    timestamps: list[str]
    ts_ms: npt.NDArray[np.int64]  # [T] the instants the worker would read (contracts.timestamps)
    columns: list[str]
    raw: list[list[str]]  # [T][F] the value cells exactly as in the file
    values: npt.NDArray[np.float32]  # [T, F]


# --- reading ---------------------------------------------------------------------------


def find_files(paths: Sequence[str | Path]) -> list[InputFile]:
    """CSV files named directly or found recursively below folders, in a stable order."""
    return [InputFile(path, relative) for path, relative in find_csv_files(paths)]


def read_csv(path: Path, max_features: int) -> Series:
    """``timestamp`` plus one or more value columns -> Series; raises CsvError/BacktestError."""
    table = read_csv_table(path)
    if not table.has("timestamp"):
        raise BacktestError(f"{path}: no 'timestamp' column in the header")
    columns = [h for h in table.header if h not in ("timestamp", "label")]
    if not columns:
        raise BacktestError(f"{path}: no value column besides 'timestamp'")
    if len(columns) > max_features:
        raise BacktestError(
            f"{path}: {len(columns)} value columns, the model takes at most {max_features}"
        )
    if not table.rows:
        raise BacktestError(f"{path}: no data rows")
    positions = [table.header.index(c) for c in columns]
    return Series(
        timestamps=table.column("timestamp"),
        ts_ms=table.epoch_ms("timestamp"),
        columns=columns,
        raw=[[row[i] for i in positions] for row in table.rows],
        values=table.numbers(columns).astype(np.float32),
    )


# --- writing ---------------------------------------------------------------------------


def output_path(out: Path, file: InputFile, fmt: str, detector: str) -> Path:
    if fmt == "nab":
        return out / file.category / f"{detector}_{file.path.name}"
    return out / file.relative


def write_result(
    target: Path,
    series: Series,
    scores: npt.NDArray[np.floating[Any]],
    expected: npt.NDArray[np.floating[Any]] | None,
    fmt: str,
    alerts: npt.NDArray[np.bool_] | None = None,
) -> None:
    """One row per input row; written to a side file and renamed, so no half file remains."""
    if fmt == "nab":
        header = ["timestamp", *series.columns, "anomaly_score", "label"]
    elif len(series.columns) == 1:
        header = ["timestamp", *series.columns, "anomaly_score", "expected", "alert"]
    else:
        header = ["timestamp", *series.columns, "anomaly_score"]
        header += [f"expected_{c}" for c in series.columns] + ["alert"]
    partial = target.with_name(target.name + ".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for t, stamp in enumerate(series.timestamps):
                row = [stamp, *series.raw[t], f"{float(scores[t]):.6g}"]
                if fmt == "nab":
                    row.append("0")
                elif expected is None:
                    row.extend([""] * len(series.columns))
                else:
                    row.extend(f"{float(v):.6g}" for v in expected[t])
                if fmt != "nab":
                    row.append("" if alerts is None else str(int(alerts[t])))
                writer.writerow(row)
        partial.replace(target)
    except OSError as exc:
        raise BacktestError(f"cannot write {target}: {exc.strerror}") from None


# --- running (module level so spawned processes can import it) -------------------------

Report = Callable[[int], None]


def _replay_group(
    settings: Settings,
    detector: str,
    files: list[InputFile],
    targets: list[Path],
    fmt: str,
    model: str | None,
    every_s: float | None,
    out: Path,
    report: Report,
) -> int:
    """Replay a group of files batched through the worker's detector (or a River
    baseline behind the same interface and policy); returns rows.

    ``model``: a registry version instead of the shipped model; ``every_s``: replay the
    trainer's loop too (`pipeline.evaluation.retrain`), its runs written to
    ``out/retrain.json``.
    """
    import torch

    from detectors.evaluation.replay import Replayable, replay
    from pipeline.evaluation.retrain import replay_retraining, starting_model, write_runs
    from pipeline.models.serving import build_detector, detector_params

    torch.set_num_threads(1)
    start = starting_model(settings, model)
    steps: Replayable
    if detector == VIGIL:
        steps = build_detector(settings, start)
    else:  # River is imported only when a baseline runs (the [eval] extra)
        from detectors.evaluation.river_baselines import RiverStreams

        steps = RiverStreams(detector, detector_params(settings).policy)
    series = [read_csv(f.path, steps.max_features) for f in files]
    done = 0

    def progress(rows: int) -> None:
        nonlocal done
        report(rows - done)
        done = rows

    times = [s.ts_ms for s in series]
    values = [s.values for s in series]
    if every_s is None:
        results = replay(steps, values, progress, times)
    else:
        streams = [(f.relative.as_posix(), s.columns) for f, s in zip(files, series, strict=True)]
        results, runs = replay_retraining(
            settings, start, streams, values, times, every_s, progress
        )
        write_runs(out, runs)
    for target, s, r in zip(targets, series, results, strict=True):
        scores = np.where(r.alerts, r.scores, 0.0) if fmt == "nab" else r.scores
        write_result(target, s, scores, r.expected, fmt, r.alerts)
    report(sum(len(s.timestamps) for s in series) - done)
    return sum(len(s.timestamps) for s in series)


def _groups(files: list[InputFile], jobs: int) -> list[list[int]]:
    """Indices split into `jobs` groups of about equal bytes (largest file first, greedy)."""
    sizes = [f.path.stat().st_size for f in files]
    groups: list[list[int]] = [[] for _ in range(max(1, min(jobs, len(files))))]
    load = [0] * len(groups)
    for i in sorted(range(len(files)), key=lambda i: -sizes[i]):
        g = load.index(min(load))
        groups[g].append(i)
        load[g] += sizes[i]
    return [sorted(g) for g in groups if g]


class _QueueReport:
    """Progress from a worker process: counts of rows done, sent over a managed queue."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def __call__(self, rows: int) -> None:
        if rows:
            self.queue.put(rows)


def _count_rows(files: list[InputFile]) -> int:
    total = 0
    for f in files:
        try:
            with f.path.open("rb") as fh:
                total += max(sum(1 for _ in fh) - 1, 0)
        except OSError as exc:
            raise BacktestError(f"cannot read {f.path}: {exc.strerror}") from None
    return total


def run_files(
    settings: Settings,
    files: list[InputFile],
    out: Path,
    fmt: str = "plain",
    detector: str = VIGIL,
    jobs: int = 0,
    console: Console | None = None,
    model: str | None = None,
    every_s: float | None = None,
) -> tuple[list[Path], int]:
    """Backtest `files` into `out`; returns (files written, rows). Raises BacktestError.

    ``model`` replays a registry version; ``every_s`` replays the trainer's loop too, in
    one process (the trainer trains one model on all streams, so they replay together).
    """
    from detectors.evaluation.river_baselines import BASELINES

    if detector != VIGIL and (model is not None or every_s is not None):
        raise BacktestError("--model and --retrain-every apply to the vigil detector only")
    if detector != VIGIL and detector not in BASELINES:
        choices = ", ".join([VIGIL, *sorted(BASELINES)])
        raise BacktestError(f"unknown detector {detector!r}; use one of {choices}")
    if fmt not in ("plain", "nab"):
        raise BacktestError(f"unknown format {fmt!r}; use plain or nab")
    if jobs < 0:
        raise BacktestError("--jobs must be 0 (all cores) or more")
    targets = [output_path(out, f, fmt, detector) for f in files]
    clash = {t for t in targets if targets.count(t) > 1}
    if clash:
        raise BacktestError(f"two input files would both be written to {min(clash)}")
    workers = 1 if every_s is not None else jobs or os.cpu_count() or 1
    tasks: list[tuple[Callable[..., int], tuple[Any, ...]]]
    tasks = []
    for g in _groups(files, workers):
        picked = ([files[i] for i in g], [targets[i] for i in g])
        tasks.append((_replay_group, (settings, detector, *picked, fmt, model, every_s, out)))

    progress = Progress(
        TextColumn(f"[bold]{detector}[/bold]"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} rows"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=True,
    )
    rows = 0
    with progress:
        bar = progress.add_task("rows", total=_count_rows(files))
        if workers == 1 or len(tasks) == 1:
            for func, task_args in tasks:
                rows += func(*task_args, lambda n: progress.advance(bar, n))
            return targets, rows
        ctx = get_context("spawn")
        with ctx.Manager() as manager, ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            queue = manager.Queue()
            futures: list[Future[int]] = [
                pool.submit(func, *task_args, _QueueReport(queue)) for func, task_args in tasks
            ]
            while not all(f.done() for f in futures):
                with contextlib.suppress(Empty):
                    progress.advance(bar, queue.get(timeout=0.2))
            for f in futures:
                rows += f.result()
    return targets, rows


def run_backtest(settings: Settings, args: argparse.Namespace) -> int:
    """The `vigil backtest` command; returns the exit status."""
    console = Console()
    started = time.perf_counter()
    files = find_files(args.paths)
    written, rows = run_files(
        settings,
        files,
        Path(args.out),
        fmt=args.format,
        detector=args.detector,
        jobs=args.jobs,
        console=Console(stderr=True),
        model=args.model,
        every_s=args.retrain_every,
    )
    seconds = time.perf_counter() - started
    console.print(
        f"{args.detector}: {len(written)} files, {rows:,} rows -> {args.out} in {seconds:.1f} s"
    )
    if args.retrain_every is not None:
        from pipeline.evaluation.retrain import runs_grid

        console.print(runs_grid(Path(args.out)).to_rich())
    return 0
