"""Turn raw Kafka records into validated events, or into dead-letter rejections.

Event contract
--------------
Record key: the stream id, UTF-8. Record value: one UTF-8 JSON object, e.g.::

    {"stream": "acct-42", "ts": "2026-11-21T10:00:00Z", "value": 12.5}
    {"stream": "pump-7", "ts": 1763719200000, "values": {"temp": 71.2, "vibration": 0.03}}

- ``stream``: a stream id (`pipeline.contracts.ids`: 1..200 characters, no control
  character, no lone surrogate). If absent, the record
  key is used; if both are given they must be equal (else ``key_mismatch``). An empty key
  counts as no key.
- ``ts``: an ISO 8601 string or a number of epoch seconds or milliseconds, read by the
  one rule in `pipeline.contracts.timestamps` into integer epoch milliseconds. Anything
  else, booleans, and times before 1970 or after the year 2200 are ``bad_timestamp``.
- exactly one of ``value`` (a number) or ``values`` (an object of 1..max_features
  entries, name -> number, names non-empty strings of at most 64 characters without
  control characters). Booleans are not numbers. Feature names are sorted; a single
  ``value`` becomes the one feature named ``"value"``.
- NaN and Infinity literals, or numbers too large for a float, anywhere in the message
  are ``non_finite``: alerts carry ``meta`` and must stay standard JSON. A value with
  ``|x| > max_abs_value`` is ``absurd_magnitude``.
- every other top-level field goes, unchanged, into ``meta`` and is carried into alerts;
  meta nested deeper than 32 levels or larger than 8 KiB as JSON is ``bad_meta``
  (`pipeline.contracts.meta`).
- a value longer than ``max_message_bytes`` is ``oversized`` (checked before parsing);
  a missing or empty value is ``empty``.

Each record is parsed with one ``json.loads``-equivalent call and checked with plain
Python (no pydantic) because the worker decodes tens of thousands of records a second.
``decode_record`` never raises on record content: whatever the bytes, the result is an
``Event`` or a ``Rejected`` (`pipeline.contracts.deadletter`) carrying one of the reason
codes in ``REASONS``. `pipeline.contracts.columns` decodes a whole polled batch with the
same verdicts, faster.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import orjson

from pipeline.contracts.deadletter import (
    ABSURD_MAGNITUDE,
    BAD_META,
    BAD_STREAM_ID,
    BAD_TIMESTAMP,
    EMPTY,
    KEY_MISMATCH,
    MALFORMED_JSON,
    MISSING_FIELD,
    NON_FINITE,
    NOT_AN_OBJECT,
    OVERSIZED,
    TOO_MANY_FEATURES,
    WRONG_TYPE,
    ConsumerRecordLike,
    Rejected,
    reject,
)
from pipeline.contracts.ids import stream_id_problem, unsafe_char
from pipeline.contracts.meta import meta_problem
from pipeline.contracts.timestamps import BadTimestamp, epoch_ms

FEATURE_NAME_MAX_CHARS = 64
VALUE_FEATURES = ("value",)
"""The features of an event with a single ``value``."""

_RESERVED = frozenset(("stream", "ts", "value", "values"))
_MISSING: Any = object()
_DETAIL_CHARS = 80


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
    problem = stream_id_problem(stream)
    if problem is not None:
        _fail(BAD_STREAM_ID, f"{where} {_clip(stream)} {problem}")


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
    try:
        return epoch_ms(ts)
    except BadTimestamp as exc:
        _fail(BAD_TIMESTAMP, f"'ts' {_clip(ts)} {exc}")


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
    if not name or len(name) > FEATURE_NAME_MAX_CHARS or unsafe_char(name):
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
        return VALUE_FEATURES, (_number(single, limit, None),)
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


RecordError = _Reject
"""What `parse_object` and `check_fields` raise: `.reason` (a code) and `.detail`."""


def parse_object(raw: bytes) -> dict[str, Any]:
    """The record's JSON object (raises RecordError: malformed, non-finite, not an object)."""
    obj = _parse(raw)
    if type(obj) is not dict:
        _fail(NOT_AN_OBJECT, f"value is {_json_type(obj)}, expected a JSON object")
    return obj


def check_fields(
    obj: dict[str, Any],
    key: bytes | None,
    *,
    max_features: int,
    limit: float,
    ts_ms: int | None = None,
) -> tuple[str, int, tuple[str, ...], tuple[float, ...]]:
    """(stream, ts_ms, features, values) of an object in the contract's shape, checked
    (raises RecordError). `ts_ms` given: the caller has already decided the timestamp
    (a field mapping with an explicit format) and `obj` needs no `ts`."""
    stream = _stream(obj.get("stream", _MISSING), key)
    if ts_ms is None:
        ts = obj.get("ts", _MISSING)
        if ts is _MISSING:
            _fail(MISSING_FIELD, "no 'ts' field")
        ts_ms = _timestamp(ts)
    features, values = _features(obj, max_features, limit)
    return stream, ts_ms, features, values


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
        obj = parse_object(raw)
        stream, ts_ms, features, values = check_fields(
            obj, record.key, max_features=max_features, limit=limit
        )
    except _Reject as bad:
        return reject(record, bad.reason, bad.detail)
    # Known fields present: ts, one of value/values, and maybe stream; the rest is meta.
    has_meta = len(obj) > 2 + ("stream" in obj)
    meta = {k: v for k, v in obj.items() if k not in _RESERVED} if has_meta else {}
    if has_meta and (problem := meta_problem(meta, len(raw))) is not None:
        return reject(record, BAD_META, problem)
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
