"""The checkpoint's bookkeeping: held states, what a save writes, merged view and offsets."""

from __future__ import annotations

import numpy as np

from detectors.state import StateLayout
from pipeline.contracts.history import encode_points, parse_history
from pipeline.state.base import BatchView
from pipeline.worker.checkpoint import Checkpoint

LAYOUT = StateLayout(state_size=8, max_features=2)


def _states(n: int, offset: int) -> np.ndarray:
    states = LAYOUT.fresh(n)
    states["partition"], states["offset"] = 0, offset
    return states


def _points(ts: int) -> bytes:
    one = np.zeros(1, dtype=np.int64)
    values = np.full((1, 2), float(ts), dtype=np.float32)
    return encode_points(one, [("value",)], one + ts, np.ones(1, np.float32), np.zeros(1, bool),
                         values, values)[0]  # fmt: skip


def test_only_changed_streams_are_saved_with_their_latest_state() -> None:
    cp = Checkpoint(LAYOUT, history_length=3)
    assert cp.missing(["a", "b"]) == ["a", "b"]
    cp.insert(["a", "b"], _states(2, -1))
    assert cp.missing(["a", "b", "c"]) == ["c"]
    rows = cp.rows_of(["a", "b"])
    changed = np.array([True, False])
    for offset in (5, 9):  # two batches touch "a"; "b" was loaded but nothing applied
        view = BatchView(history=[_points(offset)], scores=[offset / 10], alerts=[b"{}"],
                         metrics=[("records", 2), ("=model_version", f"v{offset}")])  # fmt: skip
        cp.add_batch(rows, _states(2, offset), changed, view, [], {("t", 0): offset + 1})
    items, view = cp.save_args([("=lag:t:0", 4)])
    assert [stream for stream, _ in items] == ["a"]
    saved, _ = LAYOUT.decode([items[0][1]])
    assert int(saved["offset"][0]) == 9
    assert view.scores == [0.9]
    assert [p.ts_ms for p in parse_history(view.history[0])] == [5, 9]
    assert view.alerts == [b"{}", b"{}"]
    assert dict(view.metrics) == {"records": 4.0, "=model_version": "v9", "=lag:t:0": 4}
    assert cp.offsets == {("t", 0): 10}


def test_growing_keeps_earlier_rows_and_clear_forgets_everything() -> None:
    cp = Checkpoint(LAYOUT, history_length=0)
    for start in range(0, 3000, 500):
        streams = [f"s{i}" for i in range(start, start + 500)]
        cp.insert(streams, _states(500, start))
    assert len(cp) == 3000
    assert int(cp.states[cp.rows["s2999"]]["offset"]) == 2500
    assert int(cp.states[cp.rows["s10"]]["offset"]) == 0
    cp.clear()
    assert len(cp) == 0 and cp.batches == 0 and cp.missing(["s1"]) == ["s1"]
