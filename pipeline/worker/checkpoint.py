"""The states a worker holds, and what it has applied since it last saved and committed.

Saving every stream's state after every polled batch makes a small batch expensive: the
state load and save cost the same per stream whether the stream had one event in the
batch or fifty, so under moderate load (many small batches) that cost is paid per event.
Instead the worker applies batches to states held in memory and, every
`commit_interval_ms`, saves the states that changed and then commits the offsets of
every batch of the interval — a checkpoint, as in Kafka Streams, Flink or Quix Streams.
Alerts are still published and acknowledged batch by batch, so alert latency does not
wait for it.

States stay held after a checkpoint (clean) for as long as the worker owns their
partition: a stream is read from Redis once, when first touched, and a checkpoint writes
only what changed. That is safe because a stream's events all arrive on one partition
(keyed by stream id; key-less records are routed, `pipeline.worker.loop`) and only the
partition's owner writes its states. A state leaves memory when its partition is revoked
(after the save) and when more than `max_cached_streams` are held: the least recently
used clean ones are dropped after a checkpoint (they were just flushed).

Nothing changes about the guarantees: offsets are committed only after the states that
include their events are saved (fenced by offset), so a crash replays the interval from
Redis's last saved states, and replayed events at or below a saved offset are skipped.

Pure bookkeeping, no I/O: the worker loads, saves and commits.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from detectors.state import StateLayout
from pipeline.contracts.alerts import Alert
from pipeline.contracts.history import append_points
from pipeline.state.base import BatchView

Metric = tuple[str, float | str]


@dataclass
class Checkpoint:
    """Held states (one row per stream) and what the open interval has done to them."""

    layout: StateLayout
    history_length: int
    rows: dict[str, int] = field(default_factory=dict)
    states: np.ndarray = field(init=False)
    dirty: np.ndarray = field(init=False)  # [rows] the state changed since the last save
    scores: np.ndarray = field(init=False)  # [rows] latest score, for the API's ranking
    partition: np.ndarray = field(init=False)  # [rows] the stream's partition
    used: np.ndarray = field(init=False)  # [rows] the batch (tick) that last touched it
    tick: int = 0
    history: dict[int, bytes] = field(default_factory=dict)  # row -> header + new points
    alerts: list[Alert] = field(default_factory=list)
    alert_json: list[bytes] = field(default_factory=list)
    increments: dict[str, float] = field(default_factory=dict)
    values: dict[str, float | str] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    batches: int = 0
    opened: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.drop_all()

    def drop_all(self) -> None:
        """Forget every held state and the open interval."""
        self.rows = {}
        self.states = self.layout.fresh(0)
        self.dirty = np.zeros(0, dtype=bool)
        self.scores = np.zeros(0, dtype=np.float64)
        self.partition = np.zeros(0, dtype=np.int64)
        self.used = np.zeros(0, dtype=np.int64)
        self.close_interval()

    def close_interval(self) -> None:
        """The interval was saved and committed: its states are clean, and stay held."""
        self.dirty[:] = False
        self.history = {}
        self.alerts, self.alert_json = [], []
        self.increments, self.values = {}, {}
        self.offsets = {}
        self.batches = 0
        self.opened = time.monotonic()

    def __len__(self) -> int:
        return len(self.rows)

    def missing(self, streams: list[str]) -> list[str]:
        """The streams whose state is not held here (to be loaded from Redis)."""
        rows = self.rows
        return [s for s in streams if s not in rows]

    def insert(self, streams: list[str], states: np.ndarray, partitions: np.ndarray) -> None:
        """Hold freshly loaded states (new rows, clean) of streams on `partitions`."""
        start, end = len(self.rows), len(self.rows) + len(streams)
        if end > len(self.states):  # grow by doubling: appends stay cheap on average
            size = max(end, 2 * len(self.states), 1024)
            # rows past len(self) are written before they are read: zeros, not fresh states
            self.states = _grown(self.states, np.zeros(size, dtype=self.layout.dtype))
            self.dirty = _grown(self.dirty, np.zeros(size, dtype=bool))
            self.scores = _grown(self.scores, np.zeros(size))
            self.partition = _grown(self.partition, np.zeros(size, dtype=np.int64))
            self.used = _grown(self.used, np.zeros(size, dtype=np.int64))
        self.rows.update(zip(streams, range(start, end), strict=True))
        self.states[start:end] = states
        self.dirty[start:end] = False
        self.partition[start:end] = partitions
        self.used[start:end] = self.tick

    def rows_of(self, streams: list[str]) -> np.ndarray:
        rows = self.rows
        return np.array([rows[s] for s in streams], dtype=np.int64)

    def drop_partitions(self, partitions: set[int]) -> None:
        """Stop holding the streams of revoked partitions (after their last save)."""
        n = len(self.rows)
        self._keep(~np.isin(self.partition[:n], list(partitions)))

    def evict(self, keep: int, busy: np.ndarray | None = None, refused: Sequence[str] = ()) -> int:
        """Stop holding the `refused` streams (their save was refused: another worker
        holds a newer state), then hold at most `keep` states, dropping the least
        recently used. Never a dirty state (not saved yet) nor one in `busy` (a mask of
        rows whose save is under way): the next touch would re-read an older copy.
        Returns how many were dropped; the next event of a dropped stream reloads it."""
        n = len(self.rows)
        protected = self.dirty[:n] if busy is None else self.dirty[:n] | busy
        kept = np.ones(n, dtype=bool)
        gone = self.rows_of([s for s in refused if s in self.rows])
        kept[gone] = protected[gone]
        excess = int(kept.sum()) - keep
        if excess > 0:
            order = np.argsort(self.used[:n], kind="stable")
            free = order[kept[order] & ~protected[order]]
            kept[free[:excess]] = False
        self._keep(kept)
        return n - len(self.rows)

    def _keep(self, kept: np.ndarray) -> None:
        if kept.all():
            return
        assert not self.history, "rows move: only between intervals"
        index = np.flatnonzero(kept)
        streams = list(self.rows)
        self.rows = {streams[i]: row for row, i in enumerate(index.tolist())}
        self.states = gather(self.states, index)
        self.dirty = self.dirty[index]
        self.scores = self.scores[index]
        self.partition = self.partition[index]
        self.used = self.used[index]

    def add_batch(
        self,
        rows: np.ndarray,
        states: np.ndarray,
        changed: np.ndarray,
        view: BatchView,
        alerts: list[Alert],
        offsets: dict[tuple[str, int], int],
    ) -> None:
        """Take in a processed batch: `rows` [n] and `states` [n] are its streams,
        `changed` [n] those it applied events to; `view` holds, per changed stream, its
        new history points and latest score; `offsets` are the batch's next offsets."""
        scatter(self.states, rows, states)
        self.tick += 1
        self.used[rows] = self.tick
        touched = rows[changed]
        self.dirty[touched] = True
        self.scores[touched] = view.scores
        if self.history_length > 0:
            for row, points in zip(touched.tolist(), view.history, strict=True):
                if points:
                    kept = self.history.get(row)
                    self.history[row] = append_points(kept, points, self.history_length)
        self.alerts += alerts
        self.alert_json += view.alerts
        for name, amount in view.metrics:
            if name.startswith("="):
                self.values[name] = amount
            else:
                self.increments[name] = self.increments.get(name, 0.0) + float(amount)
        for partition, offset in offsets.items():
            self.offsets[partition] = max(offset, self.offsets.get(partition, 0))
        self.batches += 1

    def changed_partitions(self) -> np.ndarray:
        """The partition of each item `save_args` returns, in the same order."""
        return self.partition[np.flatnonzero(self.dirty[: len(self.rows)])]

    def save_args(
        self, extra_metrics: Sequence[Metric]
    ) -> tuple[list[tuple[str, bytes]], BatchView]:
        """The (stream, blob) items and the view to save: every stream that changed."""
        streams = list(self.rows)
        rows = np.flatnonzero(self.dirty[: len(streams)])
        blobs = self.layout.encode(gather(self.states, rows))
        changed = rows.tolist()
        items = list(zip([streams[i] for i in changed], blobs, strict=True))
        metrics: list[Metric] = [*self.increments.items(), *self.values.items(), *extra_metrics]
        view = BatchView(
            history=[self.history.get(i, b"") for i in changed],
            scores=self.scores[changed].tolist(),
            alerts=self.alert_json,
            history_length=self.history_length,
            metrics=metrics,
        )
        return items, view


def _whole(records: np.ndarray) -> np.ndarray:
    return records.view(np.dtype((np.void, records.dtype.itemsize)))


def gather(records: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`records[index]` of a contiguous structured array, copied as whole records: numpy
    copies a structured dtype field by field, about ten times slower at 760-byte states,
    and a batch gathers and scatters every stream's state once per round."""
    return _whole(records)[index].view(records.dtype)


def scatter(records: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """`records[index] = values`, whole records at a time (see `gather`)."""
    _whole(records)[index] = _whole(np.ascontiguousarray(values, dtype=records.dtype))


def _grown(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    new[: len(old)] = old
    return new
