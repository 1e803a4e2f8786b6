"""Training data: recent history from the events topic (or CSV files) as model sequences.

Reading the topic: a group-less consumer is assigned every partition and reads from the
start (or from given offsets) until the topic has been idle for a moment, the time
budget is spent, or it has read the record budget after the last known position. It
never asks the broker for end offsets or offsets-for-times: the local development broker
answers those wrongly, and reading until idle is correct on Apache Kafka too. Only the
newest `max_records` events are kept (a bounded deque per partition), so the history is
*recent* whatever the topic's size.

Events are validated exactly as the worker validates them and a stream's events are kept
only where the worker would apply them (timestamps strictly increasing, the first
event's feature names), so the model trains on what it will serve. Sequences are
normalised with the detector's own online statistics (`normalise_sequences`) and split by
time: the last part of every stream is held out for champion/challenger comparison.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from kafka import KafkaConsumer, TopicPartition

from detectors.detector import DetectorParams
from detectors.training.train import normalise_sequences
from pipeline.contracts.csvfile import find_csv_files, read_csv_table
from pipeline.contracts.events import Event, decode_record
from pipeline.kafka.base import Record
from pipeline.settings import Settings


class TrainingDataError(Exception):
    """Not enough (or unreadable) history to train on; the message says what to do."""


@dataclass
class StreamSeries:
    """One stream's accepted events in time order."""

    features: tuple[str, ...]
    ts_ms: list[int] = field(default_factory=list)
    values: list[tuple[float, ...]] = field(default_factory=list)


@dataclass
class History:
    """Per-stream series plus where they came from (recorded in the registry)."""

    streams: dict[str, StreamSeries]
    source: str
    records: int = 0
    rejected: int = 0
    next_offsets: dict[int, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(len(s.ts_ms) for s in self.streams.values())

    def window(self) -> dict[str, Any]:
        """The training window as registry metadata."""
        firsts = [s.ts_ms[0] for s in self.streams.values() if s.ts_ms]
        lasts = [s.ts_ms[-1] for s in self.streams.values() if s.ts_ms]
        return {
            "source": self.source,
            "first_ts": min(firsts) if firsts else None,
            "last_ts": max(lasts) if lasts else None,
            "records": self.records,
            "events": self.events,
            "rejected": self.rejected,
            "streams": len(self.streams),
            "next_offsets": {str(p): o for p, o in sorted(self.next_offsets.items())},
        }


def history_from_events(events: Iterable[Event], source: str, records: int = 0) -> History:
    """Group events by stream, keeping only those the worker would apply."""
    streams: dict[str, StreamSeries] = {}
    dropped = 0
    n = 0
    for event in events:
        n += 1
        series = streams.get(event.stream)
        if series is None:
            series = streams[event.stream] = StreamSeries(event.features)
        if event.features != series.features or (series.ts_ms and event.ts_ms <= series.ts_ms[-1]):
            dropped += 1
            continue
        series.ts_ms.append(event.ts_ms)
        series.values.append(tuple(event.values))
    return History(streams, source, records=records or n, rejected=dropped)


def read_topic(
    settings: Settings,
    max_records: int | None = None,
    max_seconds: float | None = None,
    start_offsets: dict[int, int] | None = None,
    idle_seconds: float = 2.0,
) -> History:
    """The newest `max_records` valid events of the events topic, read until idle."""
    budget = max_records or settings.train_max_records
    deadline = time.monotonic() + (max_seconds or settings.train_max_seconds)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap().split(","),
        client_id="vigil-trainer-reader",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=10_000,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **settings.kafka_security(),
    )
    try:
        partitions = None
        while time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(settings.events_topic)
            if partitions:
                break
            time.sleep(0.2)
        if not partitions:
            raise TrainingDataError(f"topic {settings.events_topic} does not exist or is empty")
        tps = [TopicPartition(settings.events_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        for tp in tps:
            start = (start_offsets or {}).get(tp.partition)
            if start is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)
        kept: dict[int, deque[Any]] = defaultdict(lambda: deque(maxlen=budget))
        next_offsets: dict[int, int] = {}
        seen = 0
        last_data = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for tp, records in batch.items():
                kept[tp.partition].extend(records)
                next_offsets[tp.partition] = records[-1].offset + 1
                seen += len(records)
                last_data = time.monotonic()
            if not batch and time.monotonic() - last_data > idle_seconds:
                break
    finally:
        consumer.close()
    # Keep the newest `budget` records overall: trim each partition by record time.
    newest = sorted((r for q in kept.values() for r in q), key=lambda r: r.timestamp)[-budget:]
    newest.sort(key=lambda r: (r.partition, r.offset))
    events = []
    rejected = 0
    for r in newest:
        record = Record(r.topic, r.partition, r.offset, r.key, r.value, [], r.timestamp)
        result = decode_record(
            record,
            max_features=settings.max_features,
            max_abs_value=settings.max_abs_value,
            max_message_bytes=settings.max_message_bytes,
        )
        if isinstance(result, Event):
            events.append(result)
        else:
            rejected += 1
    history = history_from_events(events, f"topic:{settings.events_topic}", records=seen)
    history.rejected += rejected
    history.next_offsets = next_offsets
    return history


def read_csv(paths: Sequence[str], max_features: int) -> History:
    """CSV files with a `timestamp` (or `ts`) column and numeric feature columns.

    An optional `stream` column names the stream of each row; otherwise each file is one
    stream named after the file. Feature columns are used in sorted-name order. Rows
    with a non-finite value, or not after the stream's previous row, are skipped (as the
    worker would dead-letter them).
    """
    streams: dict[str, StreamSeries] = {}
    rows = 0
    for path, _ in find_csv_files(paths):
        table = read_csv_table(path)
        ts_col = next((c for c in ("timestamp", "ts") if table.has(c)), None)
        if ts_col is None:
            raise TrainingDataError(f"{path}: no 'timestamp' or 'ts' column")
        features = tuple(sorted(c for c in table.header if c not in (ts_col, "stream")))
        if not 1 <= len(features) <= max_features:
            raise TrainingDataError(
                f"{path}: {len(features)} feature columns; 1..{max_features} allowed"
            )
        names = table.column("stream") if table.has("stream") else [""] * len(table.rows)
        rows += len(table.rows)
        values = table.numbers(features, finite=False)
        for name, ts, row in zip(
            names, table.epoch_ms(ts_col).tolist(), values.tolist(), strict=True
        ):
            if not all(map(math.isfinite, row)):
                continue
            series = streams.setdefault(name or path.stem, StreamSeries(features))
            if not series.ts_ms or ts > series.ts_ms[-1]:
                series.ts_ms.append(ts)
                series.values.append(tuple(row))
    return History(streams, "csv:" + ",".join(paths), records=rows)


@dataclass
class TrainingSet:
    """Normalised windows [W, seq_len + tail, F] for training and for the held-out check
    (tail: the steps beyond the inputs the targets need, `target_steps`)."""

    z_train: np.ndarray
    mask_train: np.ndarray
    z_held: np.ndarray
    mask_held: np.ndarray
    streams: int


def _normalised(
    series: list[StreamSeries], max_features: int, params: DetectorParams
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each stream -> (z [T, F], mask [T, F]), normalised in groups of similar length.

    Streams are padded at the end within a group (padding never affects earlier steps),
    and groups are cut in length order so padding stays small.
    """
    order = sorted(range(len(series)), key=lambda i: len(series[i].ts_ms))
    out: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0), np.zeros(0))] * len(series)
    for start in range(0, len(order), 256):
        group = order[start : start + 256]
        length = max(len(series[i].ts_ms) for i in group)
        values = np.zeros((len(group), length, max_features), np.float32)
        mask = np.zeros((len(group), length, max_features), np.float32)
        for row, i in enumerate(group):
            data = np.asarray(series[i].values, dtype=np.float32)
            values[row, : len(data), : data.shape[1]] = data
            mask[row, : len(data), : data.shape[1]] = 1.0
        z = normalise_sequences(values, mask.astype(bool), params)
        for row, i in enumerate(group):
            n = len(series[i].ts_ms)
            out[i] = (z[row, :n], mask[row, :n])
    return out


def build_training_set(
    history: History,
    max_features: int,
    seq_len: int,
    held_out_fraction: float = 0.2,
    params: DetectorParams | None = None,
    tail: int = 1,
) -> TrainingSet:
    """Cut each stream into windows aligned to its newest event; its last ones are held out."""
    p = params or DetectorParams()
    usable = [s for s in history.streams.values() if len(s.ts_ms) >= seq_len + tail]
    if not usable:
        raise TrainingDataError(
            f"no stream has {seq_len + tail} events ({history.events} events in "
            f"{len(history.streams)} streams from {history.source}); collect more history"
        )
    train_z: list[np.ndarray] = []
    train_m: list[np.ndarray] = []
    held_z: list[np.ndarray] = []
    held_m: list[np.ndarray] = []
    for z, m in _normalised(usable, max_features, p):
        n_windows = (len(z) - tail) // seq_len
        starts = [len(z) - tail - (k + 1) * seq_len for k in range(n_windows)][::-1]
        n_held = max(1, round(n_windows * held_out_fraction)) if n_windows >= 2 else 0
        for k, s in enumerate(starts):
            held = k >= n_windows - n_held
            (held_z if held else train_z).append(z[s : s + seq_len + tail])
            (held_m if held else train_m).append(m[s : s + seq_len + tail])
    if not train_z or not held_z:
        raise TrainingDataError(
            f"too little history to hold out recent data: streams need at least "
            f"{2 * seq_len + tail} events"
        )
    return TrainingSet(
        z_train=np.stack(train_z),
        mask_train=np.stack(train_m),
        z_held=np.stack(held_z),
        mask_held=np.stack(held_m),
        streams=len(usable),
    )
