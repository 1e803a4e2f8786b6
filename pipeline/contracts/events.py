"""Turn raw Kafka records into validated events, or into dead-letter rejections.

Event contract
--------------
Record key: the stream id, UTF-8. Record value: one UTF-8 JSON object, e.g.::

    {"stream": "acct-42", "ts": "2026-11-21T10:00:00Z", "value": 12.5}
    {"stream": "pump-7", "ts": 1763719200000, "values": {"temp": 71.2, "vibration": 0.03}}

- ``stream``: non-empty string of at most 200 characters without control characters
  (nor lone surrogates, which could not be written back as UTF-8). If absent, the record
  key is used; if both are given they must be equal (else ``key_mismatch``). An empty key
  counts as no key.
- ``ts``: an ISO 8601 string (``Z`` or an offset; no offset means UTC) or a number of
  epoch seconds or milliseconds (numbers >= 1e11 are milliseconds, smaller ones seconds).
  It becomes integer epoch milliseconds (sub-millisecond digits are dropped). Anything
  else, booleans, and times before 1970 or after the year 2200 are ``bad_timestamp``.
- exactly one of ``value`` (a number) or ``values`` (an object of 1..max_features
  entries, name -> number, names non-empty strings of at most 64 characters without
  control characters). Booleans are not numbers. Feature names are sorted; a single
  ``value`` becomes the one feature named ``"value"``.
- NaN and Infinity literals, or numbers too large for a float, anywhere in the message
  are ``non_finite``: alerts carry ``meta`` and must stay standard JSON. A value with
  ``|x| > max_abs_value`` is ``absurd_magnitude``.
- every other top-level field goes, unchanged, into ``meta`` and is carried into alerts;
  the message size limit is what keeps it small.
- a value longer than ``max_message_bytes`` is ``oversized`` (checked before parsing);
  a missing or empty value is ``empty``.

Each record is parsed with one ``json.loads``-equivalent call and checked with plain
Python (no pydantic) because the worker decodes tens of thousands of records a second.
``decode_record`` never raises on record content: whatever the bytes, the result is an
``Event`` or a ``Rejected`` carrying one of the reason codes in ``REASONS``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, Protocol

import orjson

# --- reason codes: decided here ------------------------------------------------------
OVERSIZED = "oversized"
EMPTY = "empty"
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
NON_FINITE = "non_finite"
ABSURD_MAGNITUDE = "absurd_magnitude"
BAD_TIMESTAMP = "bad_timestamp"
BAD_STREAM_ID = "bad_stream_id"
KEY_MISMATCH = "key_mismatch"
TOO_MANY_FEATURES = "too_many_features"
# --- reason codes: decided by the worker against the stream's saved state --------------
OUT_OF_ORDER = "out_of_order"
DUPLICATE_TS = "duplicate_ts"
FEATURE_MISMATCH = "feature_mismatch"

REASONS: tuple[str, ...] = (
    OVERSIZED,
    EMPTY,
    MALFORMED_JSON,
    NOT_AN_OBJECT,
    MISSING_FIELD,
    WRONG_TYPE,
    NON_FINITE,
    ABSURD_MAGNITUDE,
    BAD_TIMESTAMP,
    BAD_STREAM_ID,
    KEY_MISMATCH,
    TOO_MANY_FEATURES,
    OUT_OF_ORDER,
    DUPLICATE_TS,
    FEATURE_MISMATCH,
)

STREAM_MAX_CHARS = 200
FEATURE_NAME_MAX_CHARS = 64
EPOCH_MS_FROM = 1e11  # epoch numbers at or above this are milliseconds, below it seconds
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)
TS_MIN_MS = 0
TS_END_MS = (datetime(2201, 1, 1, tzinfo=timezone.utc) - _EPOCH) // _ONE_MS  # exclusive

_RESERVED = frozenset(("stream", "ts", "value", "values"))
_VALUE_FEATURES = ("value",)
# C0/C1 control characters, and lone surrogates (JSON "\ud800" decodes to one).
_BAD_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_MISSING: Any = object()
_DETAIL_CHARS = 80


class ConsumerRecordLike(Protocol):
    """The fields of kafka-python's ConsumerRecord that decoding reads."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(slots=True)
class Event:
    """A validated event; features are sorted and ``values`` follows their order."""

    stream: str
    ts_ms: int
    features: tuple[str, ...]
    values: tuple[float, ...]
    meta: dict[str, Any]
    partition: int
    offset: int
    topic: str


@dataclass(slots=True)
class Rejected:
    """A record that goes to the dead-letter topic as it came, with why."""

    reason: str
    detail: str
    raw_key: bytes | None
    raw_value: bytes | None
    topic: str
    partition: int
    offset: int


class _Reject(Exception):
    """Internal: stops validation at the first problem found."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail


class _NonFinite(Exception):
    """Internal: raised from inside the JSON parser on NaN, Infinity or float overflow."""


def _refuse_constant(literal: str) -> NoReturn:
    raise _NonFinite(literal)


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):  # e.g. 1e999 parses to inf
        raise _NonFinite(literal)
    return number


# One decoder for every record: rejects non-finite numbers while parsing, so neither the
# features nor meta can ever hold one and no second pass over the message is needed.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def _fail(reason: str, detail: str) -> NoReturn:
    raise _Reject(reason, detail)


def _short(text: str) -> str:
    """Details travel in a header and are read by people: keep them one short line."""
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


def _clip(value: Any) -> str:
    """A short repr of user content (repr also escapes control characters)."""
    return _short(repr(value[:_DETAIL_CHARS] if isinstance(value, (str, bytes)) else value))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _parse(raw: bytes) -> Any:
    # Fast path: orjson parses strict JSON several times faster than the json module and
    # refuses everything the contract refuses (NaN/Infinity literals, overflowing numbers,
    # invalid UTF-8, lone surrogates, deep nesting). Whatever it refuses is parsed again
    # below only to say precisely why.
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(MALFORMED_JSON, f"value is not valid UTF-8 (byte {exc.start})")
    try:
        return _DECODER.decode(text)
    except _NonFinite as exc:
        _fail(NON_FINITE, f"non-finite number {_clip(exc.args[0])} (NaN/Infinity not allowed)")
    except RecursionError:
        _fail(MALFORMED_JSON, "JSON nested too deeply")
    except ValueError as exc:  # JSONDecodeError, or an integer literal with too many digits
        _fail(MALFORMED_JSON, _short(f"invalid JSON: {exc}"))


def _check_stream_id(stream: str, where: str) -> None:
    if not stream:
        _fail(BAD_STREAM_ID, f"{where} is empty")
    if len(stream) > STREAM_MAX_CHARS:
        _fail(BAD_STREAM_ID, f"{where} is {len(stream)} characters; the limit is 200")
    if _BAD_CHARS.search(stream):
        _fail(BAD_STREAM_ID, f"{where} {_clip(stream)} contains control characters")


def _stream(field: Any, key: bytes | None) -> str:
    key_text: str | None = None
    if key:
        try:
            key_text = key.decode("utf-8")
        except UnicodeDecodeError:
            key_text = None
    if field is _MISSING:
        if not key:
            _fail(MISSING_FIELD, "no 'stream' field and no record key")
        if key_text is None:
            _fail(BAD_STREAM_ID, f"record key {_clip(key)} is not valid UTF-8")
        _check_stream_id(key_text, "record key")
        return key_text
    if type(field) is not str:
        _fail(BAD_STREAM_ID, f"'stream' must be a string, got {_json_type(field)}")
    _check_stream_id(field, "'stream'")
    if key and field != key_text:
        _fail(KEY_MISMATCH, f"'stream' {_clip(field)} differs from the record key {_clip(key)}")
    return field


def _timestamp(ts: Any) -> int:
    kind = type(ts)
    if kind is int or kind is float:
        if not -1e15 < ts < 1e15:  # far outside 1970-2200 in s or ms; also keeps round() finite
            _fail(BAD_TIMESTAMP, f"'ts' {_clip(ts)} is before 1970 or after the year 2200")
        scaled = ts if ts >= EPOCH_MS_FROM else ts * 1000
        ms = scaled if kind is int else round(scaled)
    elif kind is str:
        try:
            moment = datetime.fromisoformat(ts)
        except ValueError:
            _fail(BAD_TIMESTAMP, f"'ts' {_clip(ts)} is not ISO 8601 or epoch seconds/ms")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        ms = (moment - _EPOCH) // _ONE_MS
    else:
        _fail(BAD_TIMESTAMP, f"'ts' must be an ISO 8601 string or a number, got {_json_type(ts)}")
    if not TS_MIN_MS <= ms < TS_END_MS:
        _fail(BAD_TIMESTAMP, f"'ts' {_clip(ts)} is before 1970 or after the year 2200")
    return ms


def _number(value: Any, limit: float, feature: str | None) -> float:
    """``value`` as a float; ``feature`` names it in errors (None for a single ``value``)."""
    kind = type(value)
    # Compared before float(): a huge JSON integer would overflow the conversion.
    if (kind is float or kind is int) and -limit <= value <= limit:
        return float(value)
    where = "'value'" if feature is None else f"'values.{feature}'"
    if kind is not float and kind is not int:
        _fail(WRONG_TYPE, f"{where} must be a number, got {_json_type(value)}")
    _fail(ABSURD_MAGNITUDE, f"{where} = {_clip(value)} exceeds the limit {limit:g}")


def _check_feature_name(name: str) -> None:
    if not name or len(name) > FEATURE_NAME_MAX_CHARS or _BAD_CHARS.search(name):
        _fail(
            WRONG_TYPE,
            f"feature name {_clip(name)} must be 1..64 characters without control characters",
        )


def _features(
    obj: dict[str, Any], max_features: int, limit: float
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    single = obj.get("value", _MISSING)
    several = obj.get("values", _MISSING)
    if single is not _MISSING:
        if several is not _MISSING:
            _fail(WRONG_TYPE, "both 'value' and 'values' given; send exactly one")
        return _VALUE_FEATURES, (_number(single, limit, None),)
    if several is _MISSING:
        _fail(MISSING_FIELD, "needs 'value' (a number) or 'values' (an object)")
    if type(several) is not dict:
        _fail(WRONG_TYPE, f"'values' must be an object, got {_json_type(several)}")
    if not several:
        _fail(WRONG_TYPE, "'values' is empty; it needs at least one feature")
    if len(several) > max_features:
        _fail(
            TOO_MANY_FEATURES, f"'values' has {len(several)} features; the limit is {max_features}"
        )
    names = sorted(several)
    for name in names:
        _check_feature_name(name)
    return tuple(names), tuple([_number(several[name], limit, name) for name in names])


def reject(record: ConsumerRecordLike, reason: str, detail: str) -> Rejected:
    """A rejection for ``record``; the worker uses it too, for the state-based reasons."""
    return Rejected(
        reason=reason,
        detail=detail,
        raw_key=record.key,
        raw_value=record.value,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )


def decode_record(
    record: ConsumerRecordLike,
    *,
    max_features: int,
    max_abs_value: float,
    max_message_bytes: int,
) -> Event | Rejected:
    """Validate one record against the event contract; never raises on its content."""
    raw = record.value
    # A limit beyond the float range would let float() overflow on a huge JSON integer.
    limit = min(max_abs_value, sys.float_info.max)
    try:
        if not raw:
            _fail(EMPTY, "record has no value")
        if len(raw) > max_message_bytes:
            _fail(OVERSIZED, f"value is {len(raw)} bytes; the limit is {max_message_bytes}")
        obj = _parse(raw)
        if type(obj) is not dict:
            _fail(NOT_AN_OBJECT, f"value is {_json_type(obj)}, expected a JSON object")
        stream = _stream(obj.get("stream", _MISSING), record.key)
        ts = obj.get("ts", _MISSING)
        if ts is _MISSING:
            _fail(MISSING_FIELD, "no 'ts' field")
        ts_ms = _timestamp(ts)
        features, values = _features(obj, max_features, limit)
    except _Reject as bad:
        return reject(record, bad.reason, bad.detail)
    # Known fields present: ts, one of value/values, and maybe stream; the rest is meta.
    has_meta = len(obj) > 2 + ("stream" in obj)
    meta = {k: v for k, v in obj.items() if k not in _RESERVED} if has_meta else {}
    return Event(
        stream=stream,
        ts_ms=ts_ms,
        features=features,
        values=values,
        meta=meta,
        partition=record.partition,
        offset=record.offset,
        topic=record.topic,
    )


def decode_batch(
    records: Iterable[ConsumerRecordLike],
    *,
    max_features: int,
    max_abs_value: float,
    max_message_bytes: int,
) -> tuple[list[Event], list[Rejected]]:
    """Split a polled batch into events and rejections, each in the batch's order."""
    events: list[Event] = []
    rejected: list[Rejected] = []
    for record in records:
        result = decode_record(
            record,
            max_features=max_features,
            max_abs_value=max_abs_value,
            max_message_bytes=max_message_bytes,
        )
        if isinstance(result, Event):
            events.append(result)
        else:
            rejected.append(result)
    return events, rejected


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


def decode_columns(
    batch: ColumnSource,
    *,
    max_features: int,
    max_abs_value: float,
    max_message_bytes: int,
) -> DecodedBatch:
    """Validate a polled batch into columns; the same verdicts as `decode_record`.

    The common shape - ``{"stream", "ts", "value"}`` (or without ``stream``, keyed),
    an integer epoch ts, a number, a stream id seen valid before - is checked inline
    with no object per record; anything else goes through `decode_record`, which decides
    every case and says why. Events without meta share one empty dict: read-only.
    """
    limit = min(max_abs_value, sys.float_info.max)
    out = DecodedBatch([], [], [], [], [], [], [])
    rows, streams, stamps = out.rows, out.streams, out.ts_ms
    features, values, metas = out.features, out.values, out.metas
    valid_keys, valid_ids = _VALID_KEYS, _VALID_IDS
    if len(valid_keys) + len(valid_ids) > _VALID_MAX:
        valid_keys.clear()
        valid_ids.clear()
    loads, bad_json = orjson.loads, orjson.JSONDecodeError
    for i, (key, raw) in enumerate(zip(batch.keys, batch.values, strict=True)):
        if raw and len(raw) <= max_message_bytes:
            try:
                obj = loads(raw)
            except bad_json:
                obj = None
            if type(obj) is dict:
                n = len(obj)
                stream = obj.get("stream") if n == 3 else (valid_keys.get(key) if key else None)
                ts, v = obj.get("ts"), obj.get("value")
                kind = type(v)
                if (
                    (n == 3 or (n == 2 and stream is not None))
                    and type(stream) is str
                    and type(ts) is int
                    and (kind is float or kind is int)
                    and -limit <= v <= limit  # type: ignore[operator]
                    and EPOCH_MS_FROM <= ts < TS_END_MS
                    and ((valid_keys.get(key) == stream) if key else (stream in valid_ids))
                ):
                    rows.append(i)
                    streams.append(stream)
                    stamps.append(ts)
                    features.append(_VALUE_FEATURES)
                    values.append((float(v),))  # type: ignore[arg-type]
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


def deadletter_headers(rejected: Rejected) -> list[tuple[str, bytes]]:
    """Headers for the dead-letter copy, whose key and value are the original bytes."""
    return [
        ("vigil.reason", rejected.reason.encode("utf-8")),
        ("vigil.detail", rejected.detail.encode("utf-8", "backslashreplace")),
        ("vigil.source.topic", rejected.topic.encode("utf-8", "backslashreplace")),
        ("vigil.source.partition", str(rejected.partition).encode("ascii")),
        ("vigil.source.offset", str(rejected.offset).encode("ascii")),
    ]


def encode_event(
    stream: str,
    ts: str | float | datetime,
    value: float | Mapping[str, float],
    /,
    **meta: Any,
) -> bytes:
    """Build an event's JSON value the way producers should (compact, UTF-8).

    ``value`` is one number, or a mapping of feature name -> number (sent as ``values``).
    It encodes what it is given, NaN included, so tests can build bad events with it too.
    """
    clash = _RESERVED.intersection(meta)
    if clash:
        raise ValueError(f"meta field {sorted(clash)[0]!r} is reserved by the event contract")
    if isinstance(ts, datetime):
        ts = ts.isoformat()
    body: dict[str, Any] = {"stream": stream, "ts": ts}
    if isinstance(value, Mapping):
        body["values"] = dict(value)
    else:
        body["value"] = value
    body.update(meta)
    # ASCII output: any string, even a lone surrogate, survives as a JSON escape.
    return json.dumps(body, separators=(",", ":")).encode("ascii")
