"""Decode a whole polled batch into parallel columns, with `decode_record`'s verdicts.

The worker's hot path: most records have the common shape, and checking that shape while
parsing (msgspec's typed decoding in C: no dict, no `Event` object, no second parse;
stream ids remembered once found valid) is what lets one process decode hundreds of
thousands of records a second. Every record that is not
plainly valid goes through `pipeline.contracts.events.decode_record`, which decides every
case and says why, so the two paths cannot disagree (a property test checks it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
from msgspec import UNSET, UnsetType

from pipeline.contracts.deadletter import Rejected
from pipeline.contracts.events import VALUE_FEATURES, Event, decode_record
from pipeline.contracts.ids import stream_id_problem
from pipeline.contracts.timestamps import EPOCH_MS_FROM, TS_END_MS


@dataclass(slots=True)
class DecodedBatch:
    """A polled batch after validation: the events as parallel columns, and the rejections.

    ``rows[j]`` is the j-th event's index in the polled batch (for its partition, offset
    and, if it is rejected later against its stream's state, the record itself).
    """

    rows: list[int]
    streams: list[str]
    ts_ms: list[int]
    features: list[tuple[str, ...]]
    values: list[tuple[float, ...]]
    metas: list[dict[str, Any]]
    rejected: list[Rejected]

    def event(self, j: int, partition: int, offset: int, topic: str) -> Event:
        return Event(
            stream=self.streams[j],
            ts_ms=self.ts_ms[j],
            features=self.features[j],
            values=self.values[j],
            meta=self.metas[j],
            partition=partition,
            offset=offset,
            topic=topic,
        )


class ColumnSource(Protocol):
    """What `decode_columns` reads of a polled batch (`pipeline.kafka.kafka_python.RecordBatch`)."""

    keys: list[bytes | None]
    values: list[bytes | None]

    def record(self, i: int) -> Any: ...


# Record keys (and key-less stream ids) already found valid: most batches repeat the same
# streams, and their checks (UTF-8, length, control characters) need not run again.
_VALID_KEYS: dict[bytes, str] = {}
_VALID_IDS: set[str] = set()
_VALID_MAX = 1 << 20
_NO_META: dict[str, Any] = {}


class PlainEvent(msgspec.Struct, forbid_unknown_fields=True):
    """The common shape, checked by msgspec in C while it parses: exactly these fields,
    an integer ts, a number (not a bool) as value, a string stream if present. Whatever
    does not fit (meta, several values, null, floats as ts, ...) fails here and goes to
    `decode_record`; duplicate fields keep the last, as orjson does there."""

    ts: int
    value: int | float
    stream: str | UnsetType = UNSET


_PLAIN = msgspec.json.Decoder(PlainEvent)


def _first_key(key: bytes, valid: dict[bytes, str]) -> str | None:
    """A record key not seen before: its stream id if valid (then remembered), else None
    (`decode_record` says why). Checked here rather than by `decode_record`: with a
    million streams, half the events of a run may be a stream's first."""
    try:
        stream = key.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if stream_id_problem(stream) is not None:
        return None
    valid[key] = stream
    return stream


def _first_id(stream: str, valid: set[str]) -> bool:
    """A key-less record's stream id not seen before: whether it is valid (remembered)."""
    if stream_id_problem(stream) is not None:
        return False
    valid.add(stream)
    return True


def decode_columns(
    batch: ColumnSource,
    *,
    max_features: int,
    max_abs_value: float,
    max_message_bytes: int,
) -> DecodedBatch:
    """Validate a polled batch into columns; the same verdicts as `decode_record`.

    The common shape - ``{"stream", "ts", "value"}`` (or without ``stream``, keyed),
    an integer epoch ts, a number, a valid stream id - is parsed and typed
    by msgspec (`PlainEvent`) and its bounds checked inline, no dict per record; anything
    else goes through `decode_record`, which decides every case and says why. Events
    without meta share one empty dict: read-only.
    """
    limit = min(max_abs_value, sys.float_info.max)
    out = DecodedBatch([], [], [], [], [], [], [])
    rows, streams, stamps = out.rows, out.streams, out.ts_ms
    features, values, metas = out.features, out.values, out.metas
    valid_keys, valid_ids = _VALID_KEYS, _VALID_IDS
    if len(valid_keys) + len(valid_ids) > _VALID_MAX:
        valid_keys.clear()
        valid_ids.clear()
    decode, invalid = _PLAIN.decode, msgspec.MsgspecError
    for i, (key, raw) in enumerate(zip(batch.keys, batch.values, strict=True)):
        if raw and len(raw) <= max_message_bytes:
            try:
                plain = decode(raw)
            except invalid:
                plain = None
            if plain is not None:
                named = plain.stream
                if key:
                    stream = valid_keys.get(key) or _first_key(key, valid_keys)
                    if named is not UNSET and named != stream:
                        stream = None
                elif isinstance(named, str) and (named in valid_ids or _first_id(named, valid_ids)):
                    stream = named
                else:
                    stream = None
                ts, v = plain.ts, plain.value
                if stream is not None and -limit <= v <= limit and EPOCH_MS_FROM <= ts < TS_END_MS:
                    rows.append(i)
                    streams.append(stream)
                    stamps.append(ts)
                    features.append(VALUE_FEATURES)
                    values.append((float(v),))
                    metas.append(_NO_META)
                    continue
        result = decode_record(
            batch.record(i),
            max_features=max_features,
            max_abs_value=max_abs_value,
            max_message_bytes=max_message_bytes,
        )
        if isinstance(result, Rejected):
            out.rejected.append(result)
            continue
        if key:
            valid_keys[key] = result.stream
        else:
            valid_ids.add(result.stream)
        rows.append(i)
        streams.append(result.stream)
        stamps.append(result.ts_ms)
        features.append(result.features)
        values.append(result.values)
        metas.append(result.meta)
    return out
