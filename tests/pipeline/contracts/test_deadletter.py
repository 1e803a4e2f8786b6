"""Reason codes and the headers a rejected record travels with."""

from __future__ import annotations

from pipeline.contracts import deadletter
from pipeline.contracts.deadletter import REASONS, Rejected, deadletter_headers
from pipeline.contracts.events import decode_record
from tests.pipeline.contracts.test_events import LIMITS, Rec, decode, dumps, ok


def test_reasons_tuple_lists_every_code_once() -> None:
    assert len(REASONS) == len(set(REASONS)) == 17
    for name in (
        "OUT_OF_ORDER",
        "DUPLICATE_TS",
        "FEATURE_MISMATCH",
        "BAD_META",
        "FUTURE_TIMESTAMP",
    ):
        assert getattr(deadletter, name) in REASONS
    assert (deadletter.OUT_OF_ORDER, deadletter.DUPLICATE_TS, deadletter.FEATURE_MISMATCH) == (
        "out_of_order",
        "duplicate_ts",
        "feature_mismatch",
    )


def test_deadletter_headers() -> None:
    got = decode_record(Rec("vigil.events", 5, 1234, 0, b"k", b"[1]", []), **LIMITS)
    assert isinstance(got, Rejected)
    headers = dict(deadletter_headers(got))
    assert headers == {
        "vigil.reason": b"not_an_object",
        "vigil.detail": got.detail.encode(),
        "vigil.source.topic": b"vigil.events",
        "vigil.source.partition": b"5",
        "vigil.source.offset": b"1234",
    }
    assert all(isinstance(v, bytes) for v in headers.values())


def test_deadletter_detail_header_is_valid_utf8_for_any_stream() -> None:
    got = decode(dumps(ok(stream="é\ud800")), key=None)
    assert isinstance(got, Rejected)
    for _, value in deadletter_headers(got):
        value.decode("utf-8")
