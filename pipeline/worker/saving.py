"""Checkpoint saves off the hot path: the loop takes a snapshot, a thread writes it.

A checkpoint writes every state changed since the last one: to the changelog topic
(and waits for the broker), then to Redis in one fenced Lua call. At 10,000 streams that
is ~10,000 states a second, and while the loop waited for it every event that arrived
waited too: the worker's tail latency was its checkpoint's duration. So the loop only
takes a snapshot of what to write (the encoded states, the API's view, the offsets: all
immutable bytes and lists) and goes on with the next batches while one background
thread writes it. The offsets are committed by the loop, once the write is done
(`SaveInFlight.collect`): Kafka clients are used from the loop's thread only.

What keeps the guarantees (`pipeline.worker.loop`):
- one save in flight at a time: the next checkpoint, a revoke and stopping wait for it;
- a state that is being written stays held (no eviction or drop of it) until its write
  is done, so it is never re-read from Redis before its newer copy is there;
- loads and saves take turns on the store (`store_lock`), a part of a save at a time: a
  load reads this client's save counter, and a loss must be seen in the order the writes
  happened, and restored before anything is loaded;
- a save refused by the fencing (another worker owns the partition now) drops the stream
  at the next snapshot instead of at once: rows of held states move only between
  intervals. Until then its state may be one interval staler; the fencing keeps Redis
  right regardless.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from pipeline.contracts.alerts import Alert
from pipeline.state.base import BatchView
from pipeline.worker.checkpoint import Checkpoint, Metric

SAVE_PART = 1000
"""States per store call of a checkpoint's save (`Worker._write`): the loop's loads wait
for at most one part."""


@dataclass
class Snapshot:
    """What one checkpoint writes, taken on the loop's thread; nothing in it changes."""

    items: list[tuple[str, bytes]]  # (stream, encoded state) of every changed stream
    view: BatchView  # the API's history, scores, alerts and counters for them
    partitions: np.ndarray  # the events partition of each item (its changelog partition)
    offsets: dict[tuple[str, int], int]  # committed once the write is done
    alerts: list[Alert]
    peaks: dict[tuple[int, str], float]
    owned: set[int]  # events partitions owned when taken (what a restore writes back)
    written: list[bool] = field(default_factory=list)  # per item: not refused


def take_snapshot(
    cp: Checkpoint,
    metrics: list[Metric],
    peaks: dict[tuple[int, str], float],
    owned: set[int],
    limit: int,
    refused: list[str],
) -> Snapshot:
    """Close the checkpoint's interval into a snapshot. Then, with no interval open (the
    only time rows may move), let go of the `refused` streams and, once `limit` states
    are held, of the least recently used quarter, but not of one being written (each
    compaction copies every held state: it must not happen at every checkpoint)."""
    items, view = cp.save_args(metrics)
    busy = cp.dirty[: len(cp)].copy()
    snap = Snapshot(items, view, cp.changed_partitions(), dict(cp.offsets), cp.alerts, peaks,
                    owned)  # fmt: skip
    cp.close_interval()
    if len(cp) >= limit:  # a quarter free: the next compaction is many intervals away
        cp.evict(limit * 3 // 4, busy=busy, refused=refused)
    elif refused:
        cp.evict(len(cp), busy=busy, refused=refused)
    return snap


class SaveInFlight:
    """The background thread, and the one snapshot it may be writing."""

    def __init__(self) -> None:
        self.store_lock = threading.RLock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vigil-checkpoint")
        self._pending: tuple[Future[list[bool]], Snapshot] | None = None

    def __bool__(self) -> bool:
        return self._pending is not None

    def start(self, write: Callable[[Snapshot], list[bool]], snap: Snapshot) -> None:
        assert self._pending is None, "one save at a time"
        self._pending = (self._pool.submit(write, snap), snap)

    def collect(self, block: bool) -> Snapshot | None:
        """The snapshot whose write finished (waiting for it with `block`), with
        `written` filled in; None if none is in flight or it is not done. Raises what
        the write raised."""
        if self._pending is None:
            return None
        future, snap = self._pending
        if not block and not future.done():
            return None
        self._pending = None
        snap.written = future.result()
        return snap

    def close(self) -> None:
        self._pool.shutdown(wait=True)
