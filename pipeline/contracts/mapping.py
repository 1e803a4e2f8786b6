"""Events from a topic that already exists, in its own field names.

Teams rarely produce Vigil's contract (`stream`, `ts`, `value`/`values`); they have topics
like ``{"account_id": "a-17", "event_time": "2026-11-21T10:00:00Z", "amount": 12.5,
"merchant": "m-9"}``. A `FieldMapping` (settings ``event_*``, see `Settings`) says which
field is the stream id (or the record key), which is the timestamp and in what format,
which numeric fields are the features (dotted paths reach into nested objects), and which
fields travel into alerts as ``meta``. Each record is turned into the contract's shape and
then passes exactly the contract's checks (`check_fields`), so the same reasons apply;
a field the mapping needs that the record lacks is ``missing_field`` with a detail that
names it, and every detail speaks of the record's own field names.

Only a worker with a mapping pays for it: without one the worker keeps using
`decode_columns` and its inline fast path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.contracts.columns import ColumnSource, DecodedBatch, decode_columns
from pipeline.contracts.deadletter import (
    BAD_META,
    BAD_STREAM_ID,
    BAD_TIMESTAMP,
    EMPTY,
    MISSING_FIELD,
    OVERSIZED,
    ConsumerRecordLike,
    Rejected,
    reject,
)
from pipeline.contracts.events import Event, RecordError, check_fields, parse_object
from pipeline.contracts.meta import meta_problem
from pipeline.contracts.timestamps import BadTimestamp, epoch_ms_in
from pipeline.settings import Settings

TsFormat = Literal["auto", "iso8601", "epoch_s", "epoch_ms"]
TS_FORMATS: tuple[str, ...] = ("auto", "iso8601", "epoch_s", "epoch_ms")
_MISSING: Any = object()


def _get(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a dotted path, or _MISSING when any step is absent or not an object."""
    if len(path) == 1:  # the common case: a top-level field
        return obj.get(path[0], _MISSING)
    value: Any = obj
    for part in path:
        if type(value) is not dict:
            return _MISSING
        value = value.get(part, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else "null" if value is None else "an object"


@dataclass(frozen=True)
class FieldMapping:
    """Where a record keeps what Vigil needs. Paths are dotted (`payload.amount`).

    `stream` empty: the stream id is the record key. `meta` empty: every top-level field
    the mapping does not use is carried as meta (as in the contract).
    """

    features: tuple[str, ...]
    ts: str = "ts"
    ts_format: TsFormat = "auto"
    stream: str = ""
    meta: tuple[str, ...] = ()
    _feature_paths: tuple[tuple[str, ...], ...] = field(init=False, repr=False)
    _used: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("a field mapping needs at least one feature field")
        if self.ts_format not in TS_FORMATS:
            raise ValueError(f"timestamp format must be one of {', '.join(TS_FORMATS)}")
        for path in (*self.features, self.ts, self.stream, *self.meta):
            if path and not all(path.split(".")):
                raise ValueError(f"field path {path!r} has an empty part")
        paths = tuple(tuple(f.split(".")) for f in self.features)
        object.__setattr__(self, "_feature_paths", paths)
        tops = {p.split(".")[0] for p in (*self.features, self.ts, self.stream) if p}
        object.__setattr__(self, "_used", frozenset(tops))

    # --- one record ---------------------------------------------------------------------
    def decode(
        self, record: ConsumerRecordLike, *, max_features: int, limit: float, max_bytes: int
    ) -> Event | Rejected:
        """The record as an event, or its rejection; never raises on record content."""
        try:
            stream, ts_ms, features, values, meta = self.fields(
                record.key, record.value, max_features=max_features, limit=limit,
                max_bytes=max_bytes,
            )  # fmt: skip
        except RecordError as bad:
            return self.reject(record, bad)
        partition, offset, topic = record.partition, record.offset, record.topic
        return Event(stream, ts_ms, features, values, meta, partition, offset, topic)

    def fields(
        self,
        key: bytes | None,
        raw: bytes | None,
        *,
        max_features: int,
        limit: float,
        max_bytes: int,
    ) -> tuple[str, int, tuple[str, ...], tuple[float, ...], dict[str, Any]]:
        """(stream, ts_ms, features, values, meta) of a record's key and value; raises
        RecordError (see `reject`)."""
        if not raw:
            raise RecordError(EMPTY, "record has no value")
        if len(raw) > max_bytes:
            raise RecordError(OVERSIZED, f"value is {len(raw)} bytes; the limit is {max_bytes}")
        obj = parse_object(raw)
        values = {}
        for name, path in zip(self.features, self._feature_paths, strict=True):
            value = _get(obj, path)
            if value is _MISSING:
                raise RecordError(MISSING_FIELD, f"no '{name}' field (a mapped feature)")
            values[name] = value
        shaped = {"stream": self._stream(obj, key), "values": values}
        ts_ms = self._ts_ms(obj, shaped)
        stream, ts_ms, features, numbers = check_fields(
            shaped, None, max_features=max_features, limit=limit, ts_ms=ts_ms
        )
        meta = self._meta(obj)
        if (problem := meta_problem(meta, len(raw))) is not None:
            raise RecordError(BAD_META, problem)
        return stream, ts_ms, features, numbers, meta

    def reject(self, record: ConsumerRecordLike, bad: RecordError) -> Rejected:
        """The dead-letter verdict, its detail in the record's own field names."""
        return reject(record, bad.reason, self._own_names(bad.detail))

    def _stream(self, obj: dict[str, Any], key: bytes | None) -> str:
        if not self.stream:
            if not key:
                raise RecordError(MISSING_FIELD, "no record key (the mapped stream id)")
            try:
                return key.decode("utf-8")
            except UnicodeDecodeError:
                raise RecordError(BAD_STREAM_ID, "record key is not valid UTF-8") from None
        value = _get(obj, tuple(self.stream.split(".")))
        if value is _MISSING:
            raise RecordError(MISSING_FIELD, f"no '{self.stream}' field (the mapped stream id)")
        if type(value) is int:  # numeric account ids are common; the stream id is their text
            return str(value)
        if type(value) is not str:
            raise RecordError(
                BAD_STREAM_ID,
                f"'{self.stream}' must be a string or an integer, got {_type_name(value)}",
            )
        return value

    def _ts_ms(self, obj: dict[str, Any], shaped: dict[str, Any]) -> int | None:
        """Epoch formats are decided here (None: the contract parses `shaped["ts"]`)."""
        value = _get(obj, tuple(self.ts.split(".")))
        if value is _MISSING:
            raise RecordError(MISSING_FIELD, f"no '{self.ts}' field (the mapped timestamp)")
        fmt = self.ts_format
        if fmt == "auto" or (fmt == "iso8601" and type(value) is str):
            shaped["ts"] = value
            return None
        if fmt == "iso8601" or type(value) not in (int, float):
            expected = "an ISO 8601 string" if fmt == "iso8601" else f"a number ({fmt})"
            raise RecordError(
                BAD_TIMESTAMP, f"'{self.ts}' must be {expected}, got {_type_name(value)}"
            )
        try:
            return epoch_ms_in(value, "s" if fmt == "epoch_s" else "ms")
        except BadTimestamp as exc:
            raise RecordError(BAD_TIMESTAMP, f"'{self.ts}' {value!r} ({fmt}) {exc}") from None

    def _meta(self, obj: dict[str, Any]) -> dict[str, Any]:
        if not self.meta:
            return {k: v for k, v in obj.items() if k not in self._used}
        found = {path: _get(obj, tuple(path.split("."))) for path in self.meta}
        return {path: value for path, value in found.items() if value is not _MISSING}

    def _own_names(self, detail: str) -> str:
        """A contract detail in the record's field names ('values.amount' -> 'amount')."""
        detail = detail.replace("'stream'", f"'{self.stream or 'record key'}'")
        for name in self.features:
            detail = detail.replace(f"'values.{name}'", f"'{name}'")
        return detail


def decode_mapped(
    batch: ColumnSource,
    mapping: FieldMapping,
    *,
    max_features: int,
    max_abs_value: float,
    max_message_bytes: int,
) -> DecodedBatch:
    """`decode_columns` for a mapped topic: the same columns, one record at a time."""
    limit = min(max_abs_value, sys.float_info.max)
    out = DecodedBatch([], [], [], [], [], [], [])
    fields = mapping.fields
    for i, (key, raw) in enumerate(zip(batch.keys, batch.values, strict=True)):
        try:
            stream, ts_ms, features, values, meta = fields(
                key, raw, max_features=max_features, limit=limit, max_bytes=max_message_bytes
            )
        except RecordError as bad:  # only a rejected record is built as a record object
            out.rejected.append(mapping.reject(batch.record(i), bad))
            continue
        out.rows.append(i)
        out.streams.append(stream)
        out.ts_ms.append(ts_ms)
        out.features.append(features)
        out.values.append(values)
        out.metas.append(meta)
    return out


BatchDecoder = Callable[[ColumnSource, int], DecodedBatch]
"""Records and the detector's feature limit -> the decoded batch (`batch_decoder`)."""


def batch_decoder(settings: Settings) -> BatchDecoder:
    """How the worker decodes a polled batch, given the model's feature slots: with
    `decode_columns` for Vigil's contract, or `decode_mapped` with the settings' mapping
    (`event_*`). The size limits come from the settings."""
    mapping = None
    if settings.event_features:
        mapping = FieldMapping(
            features=tuple(settings.event_features),
            ts=settings.event_ts_field,
            ts_format=settings.event_ts_format,
            stream=settings.event_stream_field,
            meta=tuple(settings.event_meta_fields),
        )
    limit, max_bytes = settings.max_abs_value, settings.max_message_bytes

    def decode(batch: ColumnSource, max_features: int) -> DecodedBatch:
        if mapping is None:
            return decode_columns(batch, max_features=max_features, max_abs_value=limit,
                                  max_message_bytes=max_bytes)  # fmt: skip
        return decode_mapped(batch, mapping, max_features=max_features, max_abs_value=limit,
                             max_message_bytes=max_bytes)  # fmt: skip

    return decode
