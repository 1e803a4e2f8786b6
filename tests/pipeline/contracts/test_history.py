"""The API history's binary points: encoding a batch, reading it back, appending and trimming."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.contracts.history import (
    append_points,
    encode_points,
    header,
    parse_history,
    point_dtype,
)


def _encode(
    sidx: list[int], features: Sequence[tuple[str, ...]], first_ts: int
) -> dict[int, bytes]:
    n = len(sidx)
    values = np.arange(n * 4, dtype=np.float32).reshape(n, 4)
    return encode_points(
        np.array(sidx, dtype=np.int64),
        features,
        np.arange(first_ts, first_ts + n, dtype=np.int64),
        np.linspace(0, 1, n, dtype=np.float32),
        np.array([i % 2 == 1 for i in range(n)]),
        values,
        values + 0.5,
    )


def test_points_round_trip_per_stream_in_application_order() -> None:
    features = [("value",), ("amount", "risk")]
    out = _encode([1, 0, 1, 0, 1], features, first_ts=1000)
    one = parse_history(out[0])
    assert [p.ts_ms for p in one] == [1001, 1003]
    assert one[0].values == {"value": 4.0} and one[0].expected == {"value": 4.5}
    two = parse_history(out[1])
    assert [p.ts_ms for p in two] == [1000, 1002, 1004]
    assert two[1].values == {"amount": 8.0, "risk": 9.0}
    assert [p.alert for p in two] == [False, False, False]
    assert [p.alert for p in one] == [True, True]
    # 13 bytes per point plus 8 per feature: what the memory budget in the README counts
    assert point_dtype(1).itemsize == 21 and point_dtype(2).itemsize == 29


def test_append_keeps_the_newest_points() -> None:
    features = [("value",)]
    stored = None
    for batch in range(4):
        stored = append_points(stored, _encode([0, 0, 0], features, batch * 10)[0], keep=5)
    assert [p.ts_ms for p in parse_history(stored)] == [21, 22, 30, 31, 32]


def test_a_new_feature_set_replaces_the_old_points() -> None:
    old = append_points(None, _encode([0, 0], [("value",)], 0)[0], keep=10)
    new = append_points(old, _encode([0], [("a", "b")], 50)[0], keep=10)
    assert new.startswith(header(("a", "b")))
    assert [p.ts_ms for p in parse_history(new)] == [50]


def test_unreadable_history_reads_as_empty() -> None:
    assert parse_history(None) == []
    assert parse_history(b"VH\x00") == []
    good = _encode([0, 0], [("value",)], 0)[0]
    assert parse_history(good[:-3]) == []  # a torn point
