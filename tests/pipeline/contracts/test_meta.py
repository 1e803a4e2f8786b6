"""Bounds on meta: depth and size, and the decoder's `bad_meta` verdict."""

from __future__ import annotations

import json
from typing import Any

from pipeline.contracts.deadletter import BAD_META, Rejected
from pipeline.contracts.events import Event
from pipeline.contracts.mapping import FieldMapping
from pipeline.contracts.meta import META_MAX_BYTES, META_MAX_DEPTH, meta_problem
from tests.pipeline.contracts.test_events import decode
from tests.pipeline.contracts.test_mapping import LIMITS as MAPPED_LIMITS
from tests.pipeline.contracts.test_mapping import Rec as MappedRec


def nested(levels: int) -> Any:
    """`levels` containers, alternating lists and objects (meta itself is one more)."""
    value: Any = 1
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


def test_depth_is_bounded_at_the_limit_exactly() -> None:
    assert meta_problem({"m": nested(META_MAX_DEPTH - 1)}, 100) is None
    problem = meta_problem({"m": nested(META_MAX_DEPTH)}, 100)
    assert problem == f"meta is nested more than {META_MAX_DEPTH} levels deep"


def test_size_is_bounded_as_compact_json() -> None:
    fits = {"note": "x" * (META_MAX_BYTES - 20)}
    assert meta_problem(fits, 100_000) is None
    too_big = {"note": "x" * META_MAX_BYTES}
    assert meta_problem(too_big, 100_000) == (
        f"meta is {META_MAX_BYTES + 11} bytes as JSON; the limit is {META_MAX_BYTES}"
    )


def test_the_decoder_dead_letters_deep_or_large_meta_and_keeps_normal_meta() -> None:
    deep = b'{"ts": 1763700000000, "value": 5000, "m": ' + b"[" * 1022 + b"]" * 1022 + b"}"
    result = decode(deep)
    assert isinstance(result, Rejected) and result.reason == BAD_META
    large = json.dumps({"ts": 1763700000000, "value": 1, "m": "x" * 9000}).encode()
    result = decode(large, max_message_bytes=65_536)
    assert isinstance(result, Rejected) and result.reason == BAD_META
    assert "bytes as JSON" in result.detail
    fine = decode(json.dumps({"ts": 1763700000000, "value": 1, "m": nested(20)}).encode())
    assert isinstance(fine, Event) and fine.meta == {"m": nested(20)}


def test_a_mapped_topic_keeps_the_same_bounds_on_meta() -> None:
    payment = {"account_id": "a-1", "event_time": "2026-11-21T10:00:00Z", "amount": 5.0}
    deep = json.dumps(payment | {"merchant": nested(40)}).encode()
    for mapping in (
        FieldMapping(features=("amount",), ts="event_time", stream="account_id"),  # the rest
        FieldMapping(features=("amount",), ts="event_time", meta=("merchant",)),  # picked
    ):
        result = mapping.decode(MappedRec(deep), **MAPPED_LIMITS)
        assert isinstance(result, Rejected) and result.reason == BAD_META
        fine = json.dumps(payment | {"merchant": "m-9"}).encode()
        event = mapping.decode(MappedRec(fine), **MAPPED_LIMITS)
        assert isinstance(event, Event) and event.meta["merchant"] == "m-9"
