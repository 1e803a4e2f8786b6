"""A polled batch taken apart for the worker: events as columns, the API's view of the
batch, and the dead-letter copies of rejected records.

Kept out of the worker loop so that `pipeline/worker.py` reads as the commit order and
nothing else; everything here is per-batch bookkeeping without I/O.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np

from detectors.detector import StepOutput
from pipeline.alerts import Alert
from pipeline.events import Event, Rejected, deadletter_headers
from pipeline.history import entry_json
from pipeline.kafka_io import Record
from pipeline.state_store import BatchView

DEADLETTER_MAX_BYTES = 512 * 1024
"""A dead letter's value is the original bytes, cut to this size: a record near the
broker's size limit plus our headers would otherwise be refused by the broker, and the
worker would fail on it at every restart (a poison pill)."""


def deadletter_record(bad: Rejected) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the dead-letter copy of a rejected record."""
    value = bad.raw_value or b""
    key = bad.raw_key
    headers = deadletter_headers(bad)
    if len(value) > DEADLETTER_MAX_BYTES or (key is not None and len(key) > DEADLETTER_MAX_BYTES):
        headers.append(("vigil.truncated", f"{len(value)},{len(key or b'')}".encode()))
        value = value[:DEADLETTER_MAX_BYTES]
        key = None if key is None else key[:DEADLETTER_MAX_BYTES]
    return key, value, headers


def next_offsets(records: list[Record]) -> dict[tuple[str, int], int]:
    """Per partition, the offset after the batch's last record: what gets committed."""
    offsets: dict[tuple[str, int], int] = {}
    for r in records:
        key = (r.topic, r.partition)
        if r.offset >= offsets.get(key, 0):
            offsets[key] = r.offset + 1
    return offsets


@functools.lru_cache(maxsize=4096)
def feature_tag(features: tuple[str, ...]) -> int:
    return zlib.crc32("\x1f".join(features).encode("utf-8", "surrogatepass"))


@dataclass
class BatchColumns:
    """A batch's events as arrays, built in one pass, so each round is pure indexing."""

    stream_ids: list[str]
    sidx: np.ndarray  # stream index per event
    round_of: np.ndarray  # k for the k-th event of its stream in the batch
    part: np.ndarray
    offs: np.ndarray
    ts: np.ndarray
    ftag: np.ndarray
    x: np.ndarray  # [n, max_features] values in their slots
    mask: np.ndarray  # [n, max_features] slots in use

    @classmethod
    def of(cls, events: list[Event], max_features: int) -> BatchColumns:
        n = len(events)
        index: dict[str, int] = {}
        seen: list[int] = []
        sidx, round_of = [0] * n, [0] * n
        part, offs, ts, ftag = [0] * n, [0] * n, [0] * n, [0] * n
        values = []
        for j, e in enumerate(events):
            i = index.get(e.stream)
            if i is None:
                i = index[e.stream] = len(seen)
                seen.append(0)
            sidx[j], round_of[j] = i, seen[i]
            seen[i] += 1
            part[j], offs[j], ts[j] = e.partition, e.offset, e.ts_ms
            ftag[j] = feature_tag(e.features)
            values.append(e.values)
        x = np.zeros((n, max_features), dtype=np.float32)
        mask = np.zeros((n, max_features), dtype=bool)
        widths = np.fromiter(map(len, values), dtype=np.int64, count=n)
        if n and (widths == 1).all():
            x[:, 0] = [v[0] for v in values]
            mask[:, 0] = True
        else:
            for j, v in enumerate(values):
                x[j, : len(v)] = v
                mask[j, : len(v)] = True
        return cls(
            stream_ids=list(index),
            sidx=np.array(sidx, dtype=np.int64),
            round_of=np.array(round_of, dtype=np.int64),
            part=np.array(part, dtype=np.int64),
            offs=np.array(offs, dtype=np.int64),
            ts=np.array(ts, dtype=np.int64),
            ftag=np.array(ftag, dtype=np.uint32),
            x=x,
            mask=mask,
        )

    def rounds(self) -> list[np.ndarray]:
        """Event indices of round 0, 1, ...: each round has at most one event per stream,
        in batch (= offset) order within each stream."""
        if len(self.round_of) == 0:
            return []
        order = np.argsort(self.round_of, kind="stable")
        counts = np.bincount(self.round_of)
        return np.split(order, np.cumsum(counts)[:-1])


class ViewBuilder:
    """Collects, per stream of a batch, the history entries and latest score the API shows."""

    def __init__(self, n_streams: int, history_length: int) -> None:
        self.history_length = history_length
        self.entries: list[list[bytes]] = [[] for _ in range(n_streams)]
        self.scores = np.zeros(n_streams, dtype=np.float64)

    def add(self, events: list[Event], stream_index: np.ndarray, out: StepOutput) -> None:
        self.scores[stream_index] = out.scores
        if self.history_length <= 0:
            return
        expected = out.expected.tolist()
        scores = out.scores.tolist()
        alerts = out.alerts.tolist()
        for row, (event, i) in enumerate(zip(events, stream_index.tolist(), strict=True)):
            n = len(event.features)
            self.entries[i].append(
                entry_json(event.ts_ms, event.features, list(event.values),
                           expected[row][:n], scores[row], alerts[row])
            )  # fmt: skip

    def batch(
        self, changed: list[int], alerts: list[Alert], metrics: list[tuple[str, float | str]]
    ) -> BatchView:
        return BatchView(
            history=[b"\n".join(self.entries[i]) for i in changed],
            scores=[float(self.scores[i]) for i in changed],
            alerts=[a.to_json() for a in alerts],
            history_length=self.history_length,
            metrics=metrics,
        )
