"""What one worker counts: read by people (`vigil worker`'s summary, the bench) and by its
own /metrics (`pipeline.worker.health`); only the worker loop adds to it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.contracts.alerts import Alert
from pipeline.contracts.events import Rejected

LATENCY_SAMPLES = 200_000
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the batch-duration histogram published for Prometheus."""


@dataclass
class WorkerStats:
    """Counters a person or /metrics reads; the worker only ever adds to them."""

    records: int = 0
    applied: int = 0
    replays_skipped: int = 0
    routed: int = 0  # key-less events re-published keyed by their stream id
    alerts: int = 0
    deadletters: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    rounds: int = 0
    streams_created: int = 0
    rewarmed: int = 0
    states_reset: int = 0
    streams_reset: int = 0  # held in memory when an operator reset them
    writes_refused: int = 0
    state_losses: int = 0  # times Redis was found to have forgotten saved states
    streams_restored: int = 0  # states written back from the changelog
    commit_failures: int = 0
    model_swaps: int = 0
    store_retries: int = 0
    # batch durations for Prometheus: how many took at most each of BATCH_BUCKETS seconds
    batch_buckets: list[int] = field(default_factory=lambda: [0] * len(BATCH_BUCKETS))
    batch_seconds: float = 0.0
    lag: int | None = None  # records behind the partitions' ends at the last checkpoint
    started: float = field(default_factory=time.monotonic)
    first_batch_at: float | None = None  # monotonic time the first batch arrived
    last_batch_done: float | None = None  # monotonic time the last batch was committed
    # record time -> its batch's alerts acknowledged by the broker, for every record: an
    # event's alert (if any) is published in that flush, so this is event-to-alert latency.
    latencies_ms: list[float] = field(default_factory=list)

    def record_batch(self, seconds: float) -> None:
        self.batch_seconds += seconds
        for i, bound in enumerate(BATCH_BUCKETS):
            if seconds <= bound:
                self.batch_buckets[i] += 1

    def record_latency(self, values: Sequence[float]) -> None:
        self.latencies_ms.extend(values)
        if len(self.latencies_ms) > LATENCY_SAMPLES:
            del self.latencies_ms[: len(self.latencies_ms) - LATENCY_SAMPLES]


def batch_metrics(
    stats: WorkerStats,
    before: tuple[int, int, int],
    records: int,
    rejected: list[Rejected],
    alerts: list[Alert],
    started: float,
    model_version: str,
) -> list[tuple[str, float | str]]:
    """Counter increments of one batch; `before` holds (applied, replays_skipped, routed)
    as they were when the batch started."""
    seconds = time.perf_counter() - started
    stats.record_batch(seconds)
    metrics: list[tuple[str, float | str]] = [
        ("records", records),
        ("applied", stats.applied - before[0]),
        ("replays_skipped", stats.replays_skipped - before[1]),
        ("routed", stats.routed - before[2]),
        ("alerts", len(alerts)),
        ("batches", 1),
        ("batch_seconds_sum", seconds),
        ("=model_version", model_version),
    ]
    metrics += [(f"batch_le_{b}", 1) for b in BATCH_BUCKETS if seconds <= b]
    reasons = Counter(bad.reason for bad in rejected)
    metrics += [(f"deadletter:{reason}", n) for reason, n in reasons.items()]
    return metrics
