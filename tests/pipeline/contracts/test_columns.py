"""The columnar decoder: the verdicts `decode_record` gives, for every record of a batch."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.contracts.columns import decode_columns
from pipeline.contracts.deadletter import KEY_MISMATCH, Rejected
from pipeline.contracts.events import Event, decode_record
from pipeline.kafka.base import Record, RecordBatch

LIMITS: dict[str, Any] = {"max_features": 4, "max_abs_value": 1e12, "max_message_bytes": 4096}
TS = 1763719200000  # 2025-11-21T10:00:00Z


# --- the columnar decoder must give the same verdict as decode_record ------------------

_ids = st.sampled_from(["acct-1", "acct-2", "é-流", "", "a\x07b", "x" * 201])
_fields = st.fixed_dictionaries(
    {},
    optional={
        "stream": st.one_of(_ids, st.integers(), st.none()),
        "ts": st.one_of(
            st.integers(-(10**16), 10**16),
            st.sampled_from([TS, TS + 1, 1_700_000_000, 10**11 - 1, 10**11, 7_258_118_400_000]),
            st.floats(allow_nan=False),
            st.just("2025-11-21T10:00:00Z"),
        ),
        "value": st.one_of(
            st.integers(-(10**13), 10**13), st.floats(-1e13, 1e13), st.booleans(), st.text()
        ),
        "values": st.dictionaries(st.sampled_from(["a", "b"]), st.floats(-10, 10), max_size=2),
        "site": st.just("plant-1"),
    },
)


def _batch_records(bodies: list[tuple[dict[str, Any] | bytes, bytes | None]]) -> list[Record]:
    out = []
    for i, (body, key) in enumerate(bodies):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        out.append(Record("vigil.events", i % 3, 100 + i, key, raw, [], 0))
    return out


@settings(max_examples=300, deadline=None)
@given(
    bodies=st.lists(
        st.tuples(
            st.one_of(_fields, st.sampled_from([b"", b"{", b"[1]", b"\xff", b'{"ts":NaN}'])),
            st.one_of(st.none(), st.just(b""), _ids.map(str.encode), st.just(b"\xfe")),
        ),
        max_size=12,
    )
)
def test_decode_columns_agrees_with_decode_record(
    bodies: list[tuple[dict[str, Any] | bytes, bytes | None]],
) -> None:
    """Fast path or not, every record gets the verdict decode_record gives it, including
    records whose key was cached as valid by an earlier (or the same) batch."""
    records = _batch_records(bodies)
    for _ in range(2):  # the second pass meets every key already in the cache
        decoded = decode_columns(RecordBatch.of(records), **LIMITS)
        verdicts = [decode_record(r, **LIMITS) for r in records]
        expected_events = [(i, v) for i, v in enumerate(verdicts) if isinstance(v, Event)]
        assert [i for i, _ in expected_events] == decoded.rows
        for j, (i, event) in enumerate(expected_events):
            r = records[i]
            assert decoded.event(j, r.partition, r.offset, r.topic) == event
        assert decoded.rejected == [v for v in verdicts if isinstance(v, Rejected)]


def test_decode_columns_refuses_a_cached_key_with_another_stream() -> None:
    good = _batch_records([({"stream": "acct-1", "ts": TS, "value": 1.0}, b"acct-1")])
    decode_columns(RecordBatch.of(good), **LIMITS)  # caches the key as valid
    bad = _batch_records([({"stream": "acct-2", "ts": TS, "value": 1.0}, b"acct-1")])
    decoded = decode_columns(RecordBatch.of(bad), **LIMITS)
    assert decoded.rows == []
    assert [r.reason for r in decoded.rejected] == [KEY_MISMATCH]
    keyed = _batch_records([({"ts": TS, "value": 2.5}, b"acct-1")])
    decoded = decode_columns(RecordBatch.of(keyed), **LIMITS)
    assert decoded.streams == ["acct-1"] and decoded.values == [(2.5,)]
