"""Field mapping: records of an existing topic, in its own field names, become events."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest

from pipeline.contracts.deadletter import Rejected
from pipeline.contracts.events import Event, encode_event
from pipeline.contracts.mapping import FieldMapping, batch_decoder, decode_mapped
from pipeline.settings import Settings, SettingsError
from pipeline.settings_loader import load_settings

PAYMENT = {"account_id": "a-17", "event_time": "2026-11-21T10:00:00Z", "amount": 12.5,
           "merchant": "m-9"}  # fmt: skip
TS_MS = 1_795_255_200_000  # 2026-11-21T10:00:00Z
LIMITS: dict[str, Any] = {"max_features": 4, "limit": 1e12, "max_bytes": 65536}


class Rec(NamedTuple):
    value: bytes | None
    key: bytes | None = b"partition-key"
    topic: str = "payments"
    partition: int = 3
    offset: int = 11


def decode(mapping: FieldMapping, body: Any, key: bytes | None = b"partition-key") -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return mapping.decode(Rec(raw, key), **LIMITS)


PAYMENTS = FieldMapping(features=("amount",), ts="event_time", stream="account_id",
                        meta=("merchant",))  # fmt: skip


def test_a_payment_becomes_an_event_with_its_meta() -> None:
    event = decode(PAYMENTS, PAYMENT)
    assert isinstance(event, Event)
    assert (event.stream, event.ts_ms) == ("a-17", TS_MS)
    assert (event.features, event.values) == (("amount",), (12.5,))
    assert event.meta == {"merchant": "m-9"}
    assert (event.topic, event.partition, event.offset) == ("payments", 3, 11)


def test_the_key_may_differ_from_a_mapped_stream_id_and_numeric_ids_are_text() -> None:
    event = decode(PAYMENTS, PAYMENT | {"account_id": 42}, key=b"merchant-9")
    assert isinstance(event, Event) and event.stream == "42"


def test_stream_id_from_the_record_key_and_meta_defaults_to_the_unused_fields() -> None:
    mapping = FieldMapping(features=("amount",), ts="event_time")
    event = decode(mapping, PAYMENT, key=b"acct-9")
    assert isinstance(event, Event) and event.stream == "acct-9"
    assert event.meta == {"account_id": "a-17", "merchant": "m-9"}


def test_dotted_paths_reach_into_nested_objects() -> None:
    mapping = FieldMapping(
        features=("tx.amount", "tx.fee"), ts="meta.at", ts_format="epoch_s", stream="who.id",
        meta=("tx.currency", "absent"),
    )  # fmt: skip
    body = {"who": {"id": "u1"}, "meta": {"at": 1795255200}, "tx": {"amount": 3, "fee": 0.5,
            "currency": "EUR"}}  # fmt: skip
    event = decode(mapping, body)
    assert isinstance(event, Event)
    assert (event.stream, event.ts_ms) == ("u1", TS_MS)
    assert dict(zip(event.features, event.values, strict=True)) == {"tx.amount": 3, "tx.fee": 0.5}
    assert event.meta == {"tx.currency": "EUR"}  # a missing meta field is just absent


@pytest.mark.parametrize(
    ("fmt", "ts", "expected"),
    [
        ("epoch_ms", TS_MS, TS_MS),
        ("epoch_ms", 86_400_000, 86_400_000),  # 1970-01-02: no "seconds below 1e11" guess
        ("epoch_s", 1795255200.25, TS_MS + 250),
        ("iso8601", "2026-11-21T11:00:00+01:00", TS_MS),
        ("auto", TS_MS / 1000, TS_MS),
    ],
)
def test_timestamp_formats(fmt: Any, ts: Any, expected: int) -> None:
    mapping = FieldMapping(features=("amount",), ts="event_time", ts_format=fmt)
    event = decode(mapping, PAYMENT | {"event_time": ts})
    assert isinstance(event, Event) and event.ts_ms == expected


@pytest.mark.parametrize(
    ("body", "key", "reason", "detail"),
    [
        ({k: v for k, v in PAYMENT.items() if k != "amount"}, b"k", "missing_field",
         "no 'amount' field (a mapped feature)"),
        ({k: v for k, v in PAYMENT.items() if k != "event_time"}, b"k", "missing_field",
         "no 'event_time' field (the mapped timestamp)"),
        ({k: v for k, v in PAYMENT.items() if k != "account_id"}, b"k", "missing_field",
         "no 'account_id' field (the mapped stream id)"),
        (PAYMENT | {"amount": "12.5"}, b"k", "wrong_type", "'amount' must be a number"),
        (PAYMENT | {"amount": 1e13}, b"k", "absurd_magnitude", "'amount' = 1000000"),
        (PAYMENT | {"account_id": ["x"]}, b"k", "bad_stream_id", "'account_id' must be a"),
        (PAYMENT | {"account_id": ""}, b"k", "bad_stream_id", "'account_id' '' must be"),
        (PAYMENT | {"event_time": "soon"}, b"k", "bad_timestamp", "'soon' is not ISO 8601"),
        (b"[1, 2]", b"k", "not_an_object", "value is an array"),
        (b'{"amount": NaN}', b"k", "non_finite", "non-finite number"),
        (b"", b"k", "empty", "record has no value"),
    ],
)  # fmt: skip
def test_records_that_do_not_match_are_rejected_naming_the_field(
    body: Any, key: bytes, reason: str, detail: str
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    bad = decode(PAYMENTS, raw, key=key)
    assert isinstance(bad, Rejected)
    assert (bad.reason, bad.raw_value, bad.raw_key) == (reason, raw, key)  # bytes kept as sent
    assert detail in bad.detail and "values." not in bad.detail


@pytest.mark.parametrize(
    ("fmt", "ts", "detail"),
    [
        ("iso8601", TS_MS, "'event_time' must be an ISO 8601 string, got a number"),
        ("epoch_ms", "2026-11-21", "'event_time' must be a number (epoch_ms), got a string"),
        ("epoch_s", True, "got a boolean"),
        ("epoch_s", 1e13, "(epoch_s) is before 1970 or after the year 2200"),
        ("epoch_ms", -5, "(epoch_ms) is before 1970 or after the year 2200"),
    ],
)
def test_timestamps_in_the_wrong_format_are_bad_timestamps(fmt: Any, ts: Any, detail: str) -> None:
    mapping = FieldMapping(features=("amount",), ts="event_time", ts_format=fmt)
    bad = decode(mapping, PAYMENT | {"event_time": ts})
    assert isinstance(bad, Rejected) and bad.reason == "bad_timestamp"
    assert detail in bad.detail


def test_a_keyless_record_is_rejected_when_the_key_is_the_stream_id() -> None:
    bad = decode(FieldMapping(features=("amount",), ts="event_time"), PAYMENT, key=None)
    assert isinstance(bad, Rejected) and bad.reason == "missing_field"
    assert bad.detail == "no record key (the mapped stream id)"


class Batch:
    """The two columns `decode_mapped` reads, like a polled RecordBatch."""

    def __init__(self, records: list[Rec]) -> None:
        self.records = records
        self.keys = [r.key for r in records]
        self.values = [r.value for r in records]

    def record(self, i: int) -> Rec:
        return self.records[i]


def test_a_batch_decodes_into_the_worker_columns() -> None:
    good = json.dumps(PAYMENT).encode()
    batch = Batch([Rec(good, offset=0), Rec(b"{}", offset=1), Rec(good, offset=2)])
    out = decode_mapped(batch, PAYMENTS, max_features=4, max_abs_value=1e12,
                        max_message_bytes=65536)  # fmt: skip
    assert out.rows == [0, 2] and out.streams == ["a-17", "a-17"]
    assert out.metas == [{"merchant": "m-9"}] * 2
    assert [(r.reason, r.offset) for r in out.rejected] == [("missing_field", 1)]


def test_settings_choose_the_decoder() -> None:
    payment = json.dumps(PAYMENT).encode()
    contract = encode_event("a-17", TS_MS, 12.5)
    batch = Batch([Rec(payment, offset=0), Rec(contract, key=b"a-17", offset=1)])
    plain = batch_decoder(Settings())(batch, 4)  # no mapping: the contract's fast path
    assert plain.rows == [1] and [r.reason for r in plain.rejected] == ["missing_field"]
    mapped = load_settings(
        None,
        event_features="amount",
        event_ts_field="event_time",
        event_stream_field="account_id",
        event_meta_fields="merchant, channel",
    )
    assert mapped.event_features == ["amount"]
    assert mapped.event_meta_fields == ["merchant", "channel"]
    out = batch_decoder(mapped)(batch, 4)
    assert out.rows == [0] and out.metas == [{"merchant": "m-9"}]
    assert [r.detail for r in out.rejected] == ["no 'amount' field (a mapped feature)"]


def test_mapping_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_EVENT_FEATURES", "amount")
    monkeypatch.setenv("VIGIL_EVENT_TS_FORMAT", "epoch_ms")
    settings = load_settings()
    assert settings.event_features == ["amount"] and settings.event_ts_format == "epoch_ms"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"event_ts_field": "event_time"}, "a field mapping needs event_features"),
        ({"event_features": "a,b,c,d,e"}, "more than max_features"),
        ({"event_features": "a", "event_ts_format": "rfc822"}, "event_ts_format"),
    ],
)
def test_bad_mapping_settings_are_one_line(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as info:
        load_settings(None, **overrides)
    assert "\n" not in str(info.value)


def test_a_mapping_path_with_an_empty_part_is_refused() -> None:
    with pytest.raises(ValueError, match="empty part"):
        FieldMapping(features=("tx..amount",))
