"""What a worker has applied since it last saved to Redis and committed to Kafka.

Saving every stream's state after every polled batch makes a small batch expensive: the
state load and save cost the same per stream whether the stream had one event in the
batch or fifty, so under moderate load (many small batches) that cost is paid per event.
Instead the worker keeps the states it has touched in memory for a short interval
(`commit_interval_ms`) and saves them together, then commits the offsets of every batch
of the interval — a checkpoint, as in Kafka Streams, Flink or Quix Streams. Alerts are
still published and acknowledged batch by batch, so alert latency does not wait for it.

Nothing changes about the guarantees: offsets are committed only after the states that
include their events are saved (fenced by offset), so a crash replays the interval from
Redis's last saved states, and replayed events at or below a saved offset are skipped.
The cache is dropped at every checkpoint and whenever the group takes partitions away,
so a state is never carried across a rebalance.

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
    """States touched since the last save (one row per stream) and what goes with them."""

    layout: StateLayout
    history_length: int
    rows: dict[str, int] = field(default_factory=dict)
    states: np.ndarray = field(init=False)
    dirty: np.ndarray = field(init=False)  # [rows] the state changed since it was loaded
    scores: np.ndarray = field(init=False)  # [rows] latest score, for the API's ranking
    history: dict[int, bytes] = field(default_factory=dict)  # row -> header + new points
    alerts: list[Alert] = field(default_factory=list)
    alert_json: list[bytes] = field(default_factory=list)
    increments: dict[str, float] = field(default_factory=dict)
    values: dict[str, float | str] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    batches: int = 0
    opened: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.rows = {}
        self.states = self.layout.fresh(0)
        self.dirty = np.zeros(0, dtype=bool)
        self.scores = np.zeros(0, dtype=np.float64)
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

    def insert(self, streams: list[str], states: np.ndarray) -> None:
        """Hold freshly loaded states (new rows, not dirty until a batch changes them)."""
        start, end = len(self.rows), len(self.rows) + len(streams)
        if end > len(self.states):  # grow by doubling: appends stay cheap on average
            size = max(end, 2 * len(self.states), 1024)
            self.states = _grown(self.states, self.layout.fresh(size))
            self.dirty = _grown(self.dirty, np.zeros(size, dtype=bool))
            self.scores = _grown(self.scores, np.zeros(size))
        for i, stream in enumerate(streams):
            self.rows[stream] = start + i
        self.states[start:end] = states

    def rows_of(self, streams: list[str]) -> np.ndarray:
        rows = self.rows
        return np.array([rows[s] for s in streams], dtype=np.int64)

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
        self.states[rows] = states
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

    def save_args(
        self, extra_metrics: Sequence[Metric]
    ) -> tuple[list[tuple[str, bytes]], BatchView]:
        """The (stream, blob) items and the view to save: every stream that changed."""
        streams = list(self.rows)
        changed = np.flatnonzero(self.dirty[: len(streams)]).tolist()
        blobs = self.layout.encode(self.states[changed])
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


def _grown(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    new[: len(old)] = old
    return new
