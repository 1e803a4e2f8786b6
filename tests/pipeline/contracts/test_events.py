"""Decoding of raw records: every reason code, timestamp forms, and "never raises"."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.contracts import deadletter as reasons
from pipeline.contracts.deadletter import REASONS, Rejected, deadletter_headers
from pipeline.contracts.events import Event, decode_record, encode_event
from pipeline.contracts.timestamps import TS_END_MS

LIMITS: dict[str, Any] = {"max_features": 4, "max_abs_value": 1e12, "max_message_bytes": 4096}
TS = 1763719200000  # 2025-11-21T10:00:00Z


class Rec(NamedTuple):
    """Stand-in with kafka-python ConsumerRecord's field names; decoding is pure."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def rec(value: bytes | None, key: bytes | None = b"acct-42", offset: int = 7) -> Rec:
    return Rec("vigil.events", 3, offset, 0, key, value, [])


def dumps(body: Any) -> bytes:
    return json.dumps(body).encode()


def decode(value: bytes | None, key: bytes | None = b"acct-42", **limits: Any) -> Any:
    return decode_record(rec(value, key), **{**LIMITS, **limits})


def event(body: dict[str, Any], key: bytes | None = b"acct-42") -> Event:
    result = decode(dumps(body), key)
    assert isinstance(result, Event), result
    return result


def reason(value: bytes | None, key: bytes | None = b"acct-42", **limits: Any) -> str:
    result = decode(value, key, **limits)
    assert isinstance(result, Rejected), result
    assert result.reason in REASONS
    assert "\n" not in result.detail and result.detail
    return result.reason


def ok(**fields: Any) -> dict[str, Any]:
    return {"stream": "acct-42", "ts": TS, "value": 12.5, **fields}


# --- valid events -------------------------------------------------------------------


def test_single_value_event() -> None:
    got = event(ok())
    assert got == Event("acct-42", TS, ("value",), (12.5,), {}, 3, 7, "vigil.events")


def test_multi_feature_event_sorts_feature_names() -> None:
    body = {"stream": "pump-7", "ts": TS, "values": {"vibration": 0.03, "temp": 71, "a": -1}}
    got = event(body, key=b"pump-7")
    assert got.features == ("a", "temp", "vibration")
    assert got.values == (-1.0, 71.0, 0.03)
    assert all(type(v) is float for v in got.values)


def test_stream_from_key_when_field_absent() -> None:
    assert event({"ts": TS, "value": 1}, key=b"acct-42").stream == "acct-42"


def test_stream_from_field_when_key_absent_or_empty() -> None:
    assert event(ok(), key=None).stream == "acct-42"
    assert event(ok(), key=b"").stream == "acct-42"


def test_unicode_stream_id() -> None:
    assert event(ok(stream="pompe-été"), key="pompe-été".encode()).stream == "pompe-été"


def test_meta_carried() -> None:
    body = ok(site="plant-3", tags=["a", "b"], extra={"n": 1})
    assert event(body).meta == {"site": "plant-3", "tags": ["a", "b"], "extra": {"n": 1}}
    assert event({"ts": TS, "value": 1, "site": "x"}).meta == {"site": "x"}


def test_value_at_magnitude_limit_is_accepted() -> None:
    assert event(ok(value=-1e12)).values == (-1e12,)


def test_max_features_accepted() -> None:
    body = ok(value=None, values={f"f{i}": i for i in range(4)})
    del body["value"]
    assert len(event(body).features) == 4


# --- timestamps ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2025-11-21T10:00:00Z", TS),
        ("2025-11-21T10:00:00+00:00", TS),
        ("2025-11-21T12:30:00+02:30", TS),
        ("2025-11-21T05:00:00-05:00", TS),
        ("2025-11-21T10:00:00", TS),  # naive = UTC
        ("2025-11-21 10:00:00Z", TS),
        ("2025-11-21T10:00:00.123Z", TS + 123),
        ("2025-11-21T10:00:00.5Z", TS + 500),
        ("2025-11-21T10:00:00.123456Z", TS + 123),  # sub-ms dropped
        ("2025-11-21T10:00:00.9999999Z", TS + 999),
        ("1970-01-01T00:00:00Z", 0),
        ("2200-12-31T23:59:59.999Z", 7289654399999),
        (1763719200, TS),  # epoch seconds
        (1763719200.25, TS + 250),
        (1763719200.123, TS + 123),  # float rounding must not lose the last ms
        (TS, TS),  # epoch ms
        (1.005, 1005),  # 1.005 * 1000 is 1004.999...: rounded, not truncated
        (float(TS) + 0.4, TS),  # float ms round to the nearest ms
        (float(TS) + 0.6, TS + 1),
        (0, 0),
        (7_289_654_399, 7_289_654_399_000),  # last second of 2200, as epoch seconds
        (100_000_000_000, 100_000_000_000),  # 1e11 and above: milliseconds
    ],
)
def test_timestamp_forms(ts: Any, expected: int) -> None:
    assert event(ok(ts=ts)).ts_ms == expected


@pytest.mark.parametrize(
    "ts",
    [
        True,
        False,
        None,
        [TS],
        {"ms": TS},
        "yesterday",
        "",
        "1763719200",  # epoch numbers must be JSON numbers
        "2025-13-01T00:00:00Z",
        "2025-11-21T10:00:00+25:00",
        "1969-12-31T23:59:59.999Z",
        "2201-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00+05:00",
        -1,
        -1.5,
        7289654400000,  # 2201-01-01 in ms
        7_289_654_400,  # 2201-01-01 in seconds
        99_999_999_999,  # just below 1e11 is still seconds: year 5138
        10**400,
        -(10**400),
        1e300,
    ],
)
def test_bad_timestamp(ts: Any) -> None:
    assert reason(dumps(ok(ts=ts))) == reasons.BAD_TIMESTAMP


# --- one test per reason code ----------------------------------------------------------


def test_oversized_checked_before_parsing() -> None:
    assert reason(b"{" * 5000) == reasons.OVERSIZED
    body = dumps(ok(pad="x" * 5000))
    assert reason(body) == reasons.OVERSIZED
    assert isinstance(decode(body, max_message_bytes=len(body)), Event)


@pytest.mark.parametrize("value", [None, b""])
def test_empty(value: bytes | None) -> None:
    assert reason(value) == reasons.EMPTY


@pytest.mark.parametrize(
    "value",
    [
        b"{",
        b"not json",
        b" ",
        b'{"stream": "acct-42"} trailing',
        b"\xff\xfe{}",
        b'{"stream": "\xc3("}',
        b"\xef\xbb\xbf" + dumps(ok()),  # BOM: JSON on the wire is plain UTF-8
        b'{"ts": ' + b"1" * 5000 + b"}",  # integer beyond Python's digit limit
        b"[" * 100_000,
        b'{"a":' * 50_000,
    ],
)
def test_malformed_json(value: bytes) -> None:
    assert reason(value, max_message_bytes=1_000_000) == reasons.MALFORMED_JSON


@pytest.mark.parametrize("body", [[1, 2], 12.5, '"acct-42"', "null", "true"])
def test_not_an_object(body: Any) -> None:
    raw = body.encode() if isinstance(body, str) else dumps(body)
    assert reason(raw) == reasons.NOT_AN_OBJECT


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"stream": "acct-42", "value": 1}, b"acct-42"),  # no ts
        ({"stream": "acct-42", "ts": TS}, b"acct-42"),  # neither value nor values
        ({"ts": TS, "value": 1}, None),  # no stream, no key
        ({"ts": TS, "value": 1}, b""),
    ],
)
def test_missing_field(body: dict[str, Any], key: bytes | None) -> None:
    assert reason(dumps(body), key) == reasons.MISSING_FIELD


@pytest.mark.parametrize(
    "fields",
    [
        {"value": "12.5"},
        {"value": True},
        {"value": None},
        {"value": [1.0]},
        {"value": {"x": 1}},
        {"value": 1, "values": {"a": 1}},
        {"values": [1, 2]},
        {"values": 3},
        {"values": {}},
        {"values": {"a": "1"}},
        {"values": {"a": False}},
        {"values": {"a": None}},
        {"values": {"": 1}},
        {"values": {"x" * 65: 1}},
        {"values": {"bad\nname": 1}},
    ],
)
def test_wrong_type(fields: dict[str, Any]) -> None:
    body = {"stream": "acct-42", "ts": TS, **fields}
    assert reason(dumps(body)) == reasons.WRONG_TYPE


@pytest.mark.parametrize(
    "value",
    [
        b'{"stream":"acct-42","ts":1763719200000,"value":NaN}',
        b'{"stream":"acct-42","ts":1763719200000,"value":Infinity}',
        b'{"stream":"acct-42","ts":1763719200000,"value":-Infinity}',
        b'{"stream":"acct-42","ts":1763719200000,"value":1e999}',
        b'{"stream":"acct-42","ts":1763719200000,"values":{"a":1,"b":NaN}}',
        b'{"stream":"acct-42","ts":1763719200000,"value":1,"note":NaN}',  # even in meta
        b'{"stream":"acct-42","ts":1763719200000,"value":1,"deep":[{"x":-1e400}]}',
    ],
)
def test_non_finite(value: bytes) -> None:
    assert reason(value) == reasons.NON_FINITE


@pytest.mark.parametrize(
    "fields",
    [
        {"value": 1.0000001e12},
        {"value": -2e12},
        {"value": 10**13},
        {"value": -(10**400)},
        {"values": {"a": 1, "b": 1e300}},
    ],
)
def test_absurd_magnitude(fields: dict[str, Any]) -> None:
    body = {"stream": "acct-42", "ts": TS, **fields}
    assert reason(dumps(body)) == reasons.ABSURD_MAGNITUDE


def test_huge_integer_with_unbounded_limit_does_not_overflow() -> None:
    body = dumps({"stream": "acct-42", "ts": TS, "value": 10**400})
    assert reason(body, max_abs_value=math.inf) == reasons.ABSURD_MAGNITUDE


@pytest.mark.parametrize(
    ("stream", "key"),
    [
        ("", None),
        ("x" * 201, None),
        ("acct\x0042", None),
        ("acct\n42", None),
        ("acct\x7f", None),
        ("acct\x85", None),
        ("acct\ud800", None),  # lone surrogate: could never be encoded as UTF-8
        (42, None),
        (None, None),
        (["acct-42"], None),
        (True, None),
    ],
)
def test_bad_stream_id_in_field(stream: Any, key: bytes | None) -> None:
    assert reason(dumps(ok(stream=stream)), key) == reasons.BAD_STREAM_ID


@pytest.mark.parametrize("key", [b"\xff\xfe", b"x" * 201, b"a\x01b"])
def test_bad_stream_id_in_key(key: bytes) -> None:
    assert reason(dumps({"ts": TS, "value": 1}), key) == reasons.BAD_STREAM_ID


def test_stream_id_at_length_limit_is_accepted() -> None:
    name = "x" * 200
    assert event(ok(stream=name), key=name.encode()).stream == name


@pytest.mark.parametrize("key", [b"acct-43", b"ACCT-42", b"\xff", b"acct-42 "])
def test_key_mismatch(key: bytes) -> None:
    assert reason(dumps(ok()), key) == reasons.KEY_MISMATCH


def test_too_many_features() -> None:
    body = {"stream": "acct-42", "ts": TS, "values": {f"f{i}": i for i in range(5)}}
    assert reason(dumps(body)) == reasons.TOO_MANY_FEATURES
    assert isinstance(decode(dumps(body), max_features=5), Event)


def test_rejection_keeps_original_bytes_and_source() -> None:
    raw = b'{"stream": "acct-42", "ts": "soon", "value": 1}'
    got = decode_record(Rec("events", 2, 99, 0, b"acct-42", raw, []), **LIMITS)
    assert isinstance(got, Rejected)
    assert got == Rejected(reasons.BAD_TIMESTAMP, got.detail, b"acct-42", raw, "events", 2, 99), got
    assert "'soon'" in got.detail


def test_detail_stays_short_for_huge_input() -> None:
    raw = dumps(ok(stream="x" * 3000))
    got = decode(raw, max_message_bytes=10_000)
    assert isinstance(got, Rejected)
    assert len(got.detail) < 200


# --- producer helper -----------------------------------------------


def test_encode_event_round_trip() -> None:
    raw = encode_event("pump-7", TS, {"temp": 71.2, "rpm": 1200}, site="plant-3")
    got = decode(raw, key=b"pump-7")
    assert isinstance(got, Event)
    assert (got.stream, got.ts_ms, got.features, got.values, got.meta) == (
        "pump-7",
        TS,
        ("rpm", "temp"),
        (1200.0, 71.2),
        {"site": "plant-3"},
    )
    assert b" " not in raw


def test_encode_event_single_value_and_datetime() -> None:
    moment = datetime(2025, 11, 21, 10, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=1)))
    got = decode(encode_event("acct-42", moment, 3))
    assert isinstance(got, Event)
    assert got.ts_ms == TS - 3_600_000 + 250
    assert got.features == ("value",) and got.values == (3.0,)


def test_encode_event_can_build_bad_events() -> None:
    assert reason(encode_event("acct-42", TS, math.nan)) == reasons.NON_FINITE


def test_encode_event_refuses_reserved_meta() -> None:
    with pytest.raises(ValueError, match="reserved"):
        encode_event("acct-42", TS, 1.0, values=2)


# --- property: never raises ----------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
# Field values near the contract, mostly valid, so that generated records also get past
# the first checks and exercise the deep ones (and sometimes decode to an Event).
valid_ts = (
    st.integers(min_value=0, max_value=TS_END_MS - 1)
    | st.floats(min_value=0, max_value=7e9)
    | st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.one_of(st.none(), st.timezones()),
    ).map(datetime.isoformat)
)
near_streams = st.one_of(
    st.just("acct-42"),
    st.just("acct-42"),
    st.text(max_size=210),
    st.sampled_from(["", "x" * 201, "a\x00", "\ud800"]),
    json_values,
)
near_ts = st.one_of(
    valid_ts,
    valid_ts,
    st.integers(min_value=-(10**15), max_value=10**16),
    st.floats(),
    st.text(max_size=40),
    json_values,
)
near_numbers = st.one_of(
    st.floats(min_value=-1e12, max_value=1e12),
    st.floats(min_value=-1e12, max_value=1e12),
    st.floats(),
    st.integers(),
    json_values,
)
near_values = st.one_of(
    st.dictionaries(st.text(max_size=70), near_numbers, max_size=6),
    st.dictionaries(st.text(min_size=1, max_size=8), near_numbers, min_size=1, max_size=4),
    json_values,
)
near_events = st.fixed_dictionaries(
    {"ts": near_ts},
    optional={"stream": near_streams, "meta": json_values},
).flatmap(
    lambda body: st.one_of(
        st.fixed_dictionaries({**{k: st.just(v) for k, v in body.items()}, "value": near_numbers}),
        st.fixed_dictionaries({**{k: st.just(v) for k, v in body.items()}, "values": near_values}),
        st.fixed_dictionaries(
            {**{k: st.just(v) for k, v in body.items()}, "value": near_numbers},
            optional={"values": near_values},
        ),
        st.just(body),
    )
)
keys = st.one_of(
    st.none(),
    st.just(b"acct-42"),
    st.just(b"acct-42"),
    st.binary(max_size=10),
    st.text(max_size=210).map(lambda text: text.encode("utf-8", "surrogatepass")),
)


def check_result(result: Any) -> None:
    assert isinstance(result, (Event, Rejected))
    if isinstance(result, Rejected):
        assert result.reason in REASONS
        assert isinstance(result.detail, str) and "\n" not in result.detail
        deadletter_headers(result)
        return
    assert 0 < len(result.stream) <= 200
    result.stream.encode("utf-8")
    assert 0 <= result.ts_ms < TS_END_MS and type(result.ts_ms) is int
    assert 1 <= len(result.features) <= LIMITS["max_features"]
    assert list(result.features) == sorted(result.features)
    assert len(result.values) == len(result.features)
    for x in result.values:
        assert type(x) is float and math.isfinite(x) and abs(x) <= LIMITS["max_abs_value"]
    json.dumps(result.meta, allow_nan=False)


@settings(max_examples=500)
@given(st.binary(max_size=300), keys)
def test_never_raises_on_arbitrary_bytes(raw: bytes, key: bytes | None) -> None:
    check_result(decode(raw, key))


@settings(max_examples=500)
@given(json_values, keys)
def test_never_raises_on_arbitrary_json(body: Any, key: bytes | None) -> None:
    check_result(decode(json.dumps(body).encode(), key))


@settings(max_examples=1000)
@given(near_events, keys)
def test_never_raises_on_near_valid_events(body: dict[str, Any], key: bytes | None) -> None:
    check_result(decode(json.dumps(body).encode(), key, max_message_bytes=100_000))
