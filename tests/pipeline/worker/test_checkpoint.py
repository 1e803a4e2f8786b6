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
    cp.insert(["a", "b"], _states(2, -1), np.zeros(2, np.int64))
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


def test_growing_keeps_earlier_rows_and_drop_all_forgets_everything() -> None:
    cp = Checkpoint(LAYOUT, history_length=0)
    for start in range(0, 3000, 500):
        streams = [f"s{i}" for i in range(start, start + 500)]
        cp.insert(streams, _states(500, start), np.zeros(500, np.int64))
    assert len(cp) == 3000
    assert int(cp.states[cp.rows["s2999"]]["offset"]) == 2500
    assert int(cp.states[cp.rows["s10"]]["offset"]) == 0
    cp.drop_all()
    assert len(cp) == 0 and cp.batches == 0 and cp.missing(["s1"]) == ["s1"]


def _held(cp: Checkpoint, streams: list[str], partition: int, offset: int) -> None:
    """Load `streams` (on `partition`) and apply one batch to them."""
    cp.insert(streams, _states(len(streams), -1), np.full(len(streams), partition))
    rows = cp.rows_of(streams)
    view = BatchView(history=[b""] * len(streams), scores=[0.5] * len(streams))
    cp.add_batch(rows, _states(len(streams), offset), np.ones(len(streams), bool), view, [],
                 {("t", partition): offset + 1})  # fmt: skip


def test_states_stay_held_after_a_save_and_only_changes_are_saved_again() -> None:
    cp = Checkpoint(LAYOUT, history_length=0)
    _held(cp, ["a", "b"], partition=0, offset=3)
    items, _ = cp.save_args([])
    assert [s for s, _ in items] == ["a", "b"]
    assert cp.changed_partitions().tolist() == [0, 0]
    cp.close_interval()
    assert cp.missing(["a", "b"]) == []  # held: no reload
    assert cp.save_args([])[0] == []  # nothing changed since the save
    rows = cp.rows_of(["b"])
    view = BatchView(history=[b""], scores=[0.1])
    cp.add_batch(rows, _states(1, 7), np.ones(1, bool), view, [], {("t", 0): 8})
    items, _ = cp.save_args([])
    assert [s for s, _ in items] == ["b"]


def test_revoked_partitions_and_the_least_recently_used_are_dropped_clean_only() -> None:
    cp = Checkpoint(LAYOUT, history_length=0)
    _held(cp, ["p0-a", "p0-b"], partition=0, offset=1)
    _held(cp, ["p1-a"], partition=1, offset=2)
    cp.close_interval()
    cp.drop_partitions({0})
    assert list(cp.rows) == ["p1-a"]
    assert int(cp.states[cp.rows["p1-a"]]["offset"]) == 2
    _held(cp, ["old"], partition=2, offset=3)
    cp.close_interval()
    _held(cp, ["new", "dirty"], partition=2, offset=4)  # touched last, and not saved
    assert cp.evict(keep=2) == 2  # p1-a and old: least recently used, and clean
    assert set(cp.rows) == {"new", "dirty"}
    assert cp.dirty[cp.rows_of(["new", "dirty"])].all()
    assert cp.evict(keep=0) == 0  # unsaved states are never dropped
