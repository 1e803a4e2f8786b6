"""`vigil bench --workers 1,2,4`: how the rate grows with worker processes in one group.

For each worker count N: one topic of P partitions (`--partitions`, default the largest
N) is pre-loaded with the same events, N worker processes join one consumer group on it
and each runs until it has been idle for a while. The aggregate rate is every record
over the span from the first batch any worker received to the last batch any worker
committed (time.monotonic is one clock for every process on a machine), so the group's
start-up rebalances count, as they do in production. Per-worker efficiency is the
aggregate over N times the one-worker rate of the same run.
"""

from __future__ import annotations

import multiprocessing
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from pipeline.settings import Settings
from pipeline.worker.wiring import open_worker

IDLE_EXIT_S = 10.0
"""A worker leaves after this long without records: the others have the rest."""


@dataclass(frozen=True)
class WorkerRun:
    """One worker process's share: its records and when it worked (monotonic seconds)."""

    records: int
    first_batch_at: float | None
    last_batch_done: float | None


def _run_worker(settings: Settings, out: multiprocessing.Queue[WorkerRun]) -> None:
    """Entry point of one worker process (spawned: a fresh interpreter, one core)."""
    stats = open_worker(settings).run(idle_exit_s=IDLE_EXIT_S)
    out.put(WorkerRun(stats.records, stats.first_batch_at, stats.last_batch_done))


def group_rate(settings: Settings, n_workers: int) -> tuple[float, list[int]]:
    """Aggregate events/s of `n_workers` processes over `settings`' pre-loaded topic, and
    the records each processed."""
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[WorkerRun] = context.Queue()
    procs = [context.Process(target=_run_worker, args=(settings, out)) for _ in range(n_workers)]
    for proc in procs:
        proc.start()
    runs = [out.get(timeout=1800) for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"a bench worker exited with status {proc.exitcode}")
    starts = [r.first_batch_at for r in runs if r.first_batch_at is not None]
    ends = [r.last_batch_done for r in runs if r.last_batch_done is not None]
    if not starts or not ends:
        raise RuntimeError("the bench workers processed no records")
    total = sum(r.records for r in runs)
    return total / max(max(ends) - min(starts), 1e-9), sorted(r.records for r in runs)


def workers_curve(
    counts: list[int], runs: int, prepare: Callable[[int], Settings], console: Console
) -> list[tuple[int, float, list[int]]]:
    """(N, median aggregate events/s over `runs`, records per worker of the last run).

    `prepare(n)` gives the settings of a fresh, pre-loaded topic and group for n workers."""
    curve = []
    for n in counts:
        rates: list[float] = []
        shares: list[int] = []
        for run in range(runs):
            console.print(f"[workers] {n} worker(s), run {run + 1} …")
            rate, shares = group_rate(prepare(n), n)
            rates.append(rate)
        curve.append((n, statistics.median(rates), shares))
    return curve


def report_workers(console: Console, curve: list[tuple[int, float, list[int]]]) -> None:
    one = next((rate for n, rate, _ in curve if n == 1), None)
    table = Table(title="many workers, one group (aggregate events/s, median)")
    for name in ("workers", "events/s", "per-worker efficiency", "records per worker"):
        table.add_column(name, justify="right")
    for n, rate, shares in curve:
        efficiency = f"{rate / (n * one):.2f}" if one else "n/a (no 1-worker run)"
        table.add_row(str(n), f"{rate:,.0f}", efficiency, " + ".join(f"{x:,}" for x in shares))
    console.print(table)
