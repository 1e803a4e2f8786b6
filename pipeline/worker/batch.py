"""A polled batch taken apart for the worker: events as columns, the API's view of the
batch, and the dead-letter copies of rejected records.

Kept out of the worker loop so that `pipeline/worker/loop.py` reads as the commit order and
nothing else; everything here is per-batch bookkeeping without I/O.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import zlib
from dataclasses import dataclass

import numpy as np

from detectors.base import StepOutput
from detectors.state import StateFormatError, StateLayout
from pipeline.contracts.alerts import Alert
from pipeline.contracts.columns import DecodedBatch
from pipeline.contracts.deadletter import Rejected, deadletter_headers
from pipeline.contracts.history import encode_points
from pipeline.kafka.base import RecordBatch
from pipeline.state.base import BatchView
from pipeline.state.peaks import batch_peaks, merge_peaks
from pipeline.worker.resets import decode_states

log = logging.getLogger(__name__)

DEADLETTER_MAX_BYTES = 1_000_000
"""A dead letter (key + value + headers) stays under the smallest default record limit on
its way: librdkafka's message.max.bytes (1,000,000), kafka-python's max_request_size
(1,048,576), the broker's message.max.bytes (1,048,588); the dead-letter topic is created
with the broker's defaults."""
DEADLETTER_OVERHEAD = 1024
"""Bytes kept free for the record's own framing (batch header, varints) and the
`vigil.original.*` headers added when a copy is cut."""
DEADLETTER_KEY_KEPT = 1024
"""A key that does not fit is cut to this (stream ids are at most 200 characters: a key
this long is not one; the value says more about what went wrong)."""


def deadletter_record(bad: Rejected) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the dead-letter copy of a rejected record.

    The copy carries the original bytes, unless key + value + headers would exceed what
    the producer and broker take (`DEADLETTER_MAX_BYTES`): a record near the broker's
    limit plus our headers would be refused, and the worker would fail on it at every
    restart (a poison pill). Then the key, then the value, are cut to fit, and headers
    give the original sizes and SHA-256 digests (`vigil.original.*`) so the cut copy can
    still be matched with the source record.
    """
    value = bad.raw_value or b""
    key = bad.raw_key
    headers = deadletter_headers(bad)
    used = sum(len(name) + len(v) for name, v in headers)
    room = DEADLETTER_MAX_BYTES - DEADLETTER_OVERHEAD - used
    if len(value) + len(key or b"") <= room:
        return key, value, headers
    for part, raw in (("key", key or b""), ("value", value)):
        digest = hashlib.sha256(raw).hexdigest().encode()
        headers += [
            (f"vigil.original.{part}_bytes", str(len(raw)).encode()),
            (f"vigil.original.{part}_sha256", digest),
        ]
    if key is not None and len(key) > DEADLETTER_KEY_KEPT:
        key = key[:DEADLETTER_KEY_KEPT]
    value = value[: max(0, room - len(key or b""))]
    return key, value, headers


def decode_loaded(
    layout: StateLayout, stream_ids: list[str], blobs: list[bytes | None]
) -> tuple[np.ndarray, np.ndarray, int]:
    """(states, known, how many were unreadable) of loaded blobs (reset markers become
    fresh states, `pipeline.worker.resets`): a state that cannot be decoded starts its
    stream afresh, alone (decoded one by one), rather than failing the batch. One log
    line per batch, not per stream: after an upgrade that changes the state layout every
    stored state is unreadable, and a line each would flood the log."""
    try:
        states, known = decode_states(layout, blobs)
        return states, known, 0
    except StateFormatError:
        good: list[bytes | None] = []
        first: tuple[str, StateFormatError] | None = None
        for sid, blob in zip(stream_ids, blobs, strict=True):
            try:
                decode_states(layout, [blob])
                good.append(blob)
            except StateFormatError as exc:
                first = first or (sid, exc)
                good.append(None)
        states, known = decode_states(layout, good)
        unreadable = good.count(None) - blobs.count(None)
        if first is not None:
            log.error("%d unreadable stored states started afresh (first: stream %r, %s)",
                      unreadable, first[0], first[1])  # fmt: skip
        return states, known, unreadable


def next_offsets(batch: RecordBatch) -> dict[tuple[str, int], int]:
    """Per partition, the offset after the batch's last record: what gets committed.
    (A batch comes from one topic but for a routed event's: numpy per topic.)"""
    offsets: dict[tuple[str, int], int] = {}
    topics = set(batch.topics)
    for topic in topics:
        partitions = np.asarray(batch.partitions, dtype=np.int64)
        offs = np.asarray(batch.offsets, dtype=np.int64)
        if len(topics) > 1:
            mine = np.array([t == topic for t in batch.topics], dtype=bool)
            partitions, offs = partitions[mine], offs[mine]
        order = np.lexsort((offs, partitions))  # by partition, then offset: last is largest
        last = np.flatnonzero(np.diff(partitions[order], append=-1) != 0)
        for p, o in zip(partitions[order][last].tolist(), offs[order][last].tolist(), strict=True):
            offsets[(topic, p)] = o + 1
    return offsets


ROUTED_FROM = "vigil.routed-from"
"""Header of a key-less event re-published with its stream id as key: `partition:offset`."""


def split_unkeyed(decoded: DecodedBatch, batch: RecordBatch) -> tuple[DecodedBatch, list[int]]:
    """Take the events whose record has no key out of the batch: (the rest, their indices).

    A worker holds a stream's state between checkpoints because only one partition, so
    one worker, ever applies that stream's events. A record without a key lands on any
    partition, so the worker does not apply it there: it re-publishes it keyed by its
    stream id (`routed`), and the partition that owns the stream applies it.
    """
    keys, rows = batch.keys, decoded.rows
    if all(keys[r] for r in rows):  # the common case: every record is keyed
        return decoded, []
    away = [j for j, r in enumerate(rows) if not keys[r]]
    gone = set(away)
    stay = [j for j in range(len(rows)) if j not in gone]
    kept = DecodedBatch(
        rows=[rows[j] for j in stay],
        streams=[decoded.streams[j] for j in stay],
        ts_ms=[decoded.ts_ms[j] for j in stay],
        features=[decoded.features[j] for j in stay],
        values=[decoded.values[j] for j in stay],
        metas=[decoded.metas[j] for j in stay],
        rejected=decoded.rejected,
    )
    return kept, away


def routed_record(
    decoded: DecodedBatch, j: int, batch: RecordBatch
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the keyed copy of key-less event `j`."""
    record = batch.record(decoded.rows[j])
    where = f"{record.partition}:{record.offset}".encode()
    return decoded.streams[j].encode(), record.value or b"", [*record.headers, (ROUTED_FROM, where)]


@functools.lru_cache(maxsize=4096)
def feature_tag(features: tuple[str, ...]) -> int:
    return zlib.crc32("\x1f".join(features).encode("utf-8", "surrogatepass"))


@dataclass
class BatchColumns:
    """A batch's events as arrays, built in one pass, so each round is pure indexing."""

    stream_ids: list[str]
    stream_part: np.ndarray  # each stream's partition (its last event's in the batch)
    stream_features: list[tuple[str, ...]]  # each stream's feature names (its first event's)
    sidx: np.ndarray  # stream index per event
    round_of: np.ndarray  # k for the k-th event of its stream in the batch
    part: np.ndarray
    offs: np.ndarray
    ts: np.ndarray
    ftag: np.ndarray
    x: np.ndarray  # [n, max_features] values in their slots
    mask: np.ndarray  # [n, max_features] slots in use

    @classmethod
    def of(cls, decoded: DecodedBatch, batch: RecordBatch, max_features: int) -> BatchColumns:
        n = len(decoded.rows)
        index: dict[str, int] = {}
        sidx = np.array([index.setdefault(s, len(index)) for s in decoded.streams], np.int64)
        # k-th event of its stream: position in the stream-sorted order minus the stream's
        # first position there (a stable sort keeps each stream's events in batch order).
        order = np.argsort(sidx, kind="stable")
        counts = np.bincount(sidx, minlength=len(index))
        starts = np.cumsum(counts) - counts
        round_of = np.empty(n, dtype=np.int64)
        round_of[order] = np.arange(n) - starts[sidx[order]]
        tags = {f: feature_tag(f) for f in set(decoded.features)}
        rows = np.array(decoded.rows, dtype=np.int64)
        part = np.array(batch.partitions, dtype=np.int64)[rows]
        stream_part = np.zeros(len(index), dtype=np.int64)
        stream_part[sidx] = part
        values = decoded.values
        x = np.zeros((n, max_features), dtype=np.float32)
        mask = np.zeros((n, max_features), dtype=bool)
        if n and all(len(f) == 1 for f in tags):
            x[:, 0] = [v[0] for v in values]
            mask[:, 0] = True
        else:
            for j, v in enumerate(values):
                x[j, : len(v)] = v
                mask[j, : len(v)] = True
        return cls(
            stream_ids=list(index),
            stream_part=stream_part,
            stream_features=[decoded.features[j] for j in order[starts].tolist()],
            sidx=sidx,
            round_of=round_of,
            part=part,
            offs=np.array(batch.offsets, dtype=np.int64)[rows],
            ts=np.array(decoded.ts_ms, dtype=np.int64),
            ftag=np.array([tags[f] for f in decoded.features], dtype=np.uint32),
            x=x,
            mask=mask,
        )

    def stream_partitions(self, streams: list[str]) -> np.ndarray:
        """The partition of each of `streams` (all of them in this batch)."""
        index = dict(zip(self.stream_ids, range(len(self.stream_ids)), strict=True))
        return self.stream_part[[index[s] for s in streams]]

    def rounds(self) -> list[np.ndarray]:
        """Event indices of round 0, 1, ...: each round has at most one event per stream,
        in batch (= offset) order within each stream."""
        if len(self.round_of) == 0:
            return []
        order = np.argsort(self.round_of, kind="stable")
        counts = np.bincount(self.round_of)
        return np.split(order, np.cumsum(counts)[:-1])


class ViewBuilder:
    """Collects, per stream of a batch, the history points and latest score the API shows.

    Rounds only append arrays; the points are encoded once per batch (`batch`), with a
    few numpy calls rather than one encoder call per event.
    """

    def __init__(
        self, cols: BatchColumns, history_length: int, peak_bucket_ms: int, peak_floor: float
    ) -> None:
        self.cols = cols
        self.history_length = history_length
        self.peak_bucket_ms, self.peak_floor = peak_bucket_ms, peak_floor
        self.peaks: dict[tuple[int, str], float] = {}  # (bucket, stream) -> largest score
        self.scores = np.zeros(len(cols.stream_ids), dtype=np.float64)
        self._events: list[np.ndarray] = []
        self._outputs: list[StepOutput] = []

    def add(self, events: np.ndarray, out: StepOutput) -> None:
        """`events`: indices (into the batch's columns) of the events `out` applied."""
        self.scores[self.cols.sidx[events]] = out.scores
        cols = self.cols
        found = batch_peaks(cols.stream_ids, cols.sidx[events], cols.ts[events], out.scores,
                            self.peak_bucket_ms, self.peak_floor)  # fmt: skip
        merge_peaks(self.peaks, found)
        if self.history_length > 0:
            self._events.append(events)
            self._outputs.append(out)

    def batch(
        self, changed: list[int], alerts: list[bytes], metrics: list[tuple[str, float | str]]
    ) -> BatchView:
        """`alerts`: the batch's alerts as published (JSON)."""
        points: dict[int, bytes] = {}
        if self._events:
            events = np.concatenate(self._events)
            cols, outs = self.cols, self._outputs
            points = encode_points(
                cols.sidx[events],
                cols.stream_features,
                cols.ts[events],
                np.concatenate([o.scores for o in outs]),
                np.concatenate([o.alerts for o in outs]),
                cols.x[events],
                np.concatenate([o.expected for o in outs]),
            )
        return BatchView(
            history=[points.get(i, b"") for i in changed],
            scores=self.scores[changed].tolist(),
            alerts=alerts,
            history_length=self.history_length,
            metrics=metrics,
        )


@dataclass
class BatchOutcome:
    """What one processed batch produced: its alerts, its dead letters, its next offsets."""

    alerts: list[Alert]
    rejected: list[Rejected]
    offsets: dict[tuple[str, int], int]
