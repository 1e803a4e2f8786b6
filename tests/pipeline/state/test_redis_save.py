"""The Redis store's save in several fenced calls (`SAVE_CHUNK` states each), on a real
Redis: a checkpoint larger than one call lands whole and counts once, and a save sent
again after it had landed does not append its history points twice."""

from __future__ import annotations

import numpy as np
import pytest
import redis

from pipeline.contracts.history import encode_points, parse_history
from pipeline.state.base import (
    HEADER,
    BatchView,
    alerts_key,
    history_key,
    metrics_key,
    scores_key,
    state_key,
)
from pipeline.state.memory import MemoryStateStore
from pipeline.state.redis import SAVE_CHUNK, RedisStateStore


def _blob(offset: int) -> bytes:
    return HEADER.pack(b"VG", 1, 0, offset) + b"state"


def _point(ts_ms: int) -> bytes:
    one = np.ones((1, 1), np.float32)
    return encode_points(np.zeros(1, np.int64), [("value",)], np.array([ts_ms]),
                         np.array([0.2], np.float32), np.zeros(1, bool), one, one)[0]  # fmt: skip


def test_a_save_larger_than_one_call_lands_whole_and_counts_once(
    redis_client: redis.Redis,
) -> None:
    store = RedisStateStore(redis_client, "chunks")
    store.delete_all()
    streams = [f"s-{i}" for i in range(2 * SAVE_CHUNK + 345)]
    items = [(s, _blob(7)) for s in streams]
    view = BatchView(
        history=[_point(1000 + i) for i in range(len(streams))],
        scores=[0.25] * len(streams),
        alerts=[b'{"a":1}', b'{"a":2}'],
        history_length=10,
        metrics=[("records", 5), ("=model_version", "v9")],
    )
    assert store.save(items, view) == [True] * len(streams)
    assert store.load(streams) == [blob for _, blob in items]  # and no loss is seen
    assert redis_client.zcard(scores_key("chunks")) == len(streams)
    assert redis_client.xlen(alerts_key("chunks")) == 2
    counters = redis_client.hgetall(metrics_key("chunks"))
    assert float(counters[b"records"]) == 5 and counters[b"model_version"] == b"v9"
    last = streams[-1]
    assert [p.ts_ms for p in parse_history(redis_client.get(history_key("chunks", last)))] == [
        1000 + len(streams) - 1
    ]
    assert redis_client.get(state_key("chunks", last)) == _blob(7)


def _points(store: MemoryStateStore | RedisStateStore, stream: str) -> list[int]:
    if isinstance(store, MemoryStateStore):
        stored = store.history.get(stream)
    else:
        stored = store.client.get(history_key(store.prefix, stream))
    return [p.ts_ms for p in parse_history(stored)]


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_save_sent_again_after_it_landed_appends_its_points_once(
    redis_client: redis.Redis, backend: str
) -> None:
    """A retry after a lost reply, or after a later call of the same save failed, is
    accepted (the same bytes) without repeating the history it had appended."""
    redis_client.delete(state_key("again", "s"), history_key("again", "s"))
    store: MemoryStateStore | RedisStateStore = MemoryStateStore("again")
    if backend == "redis":
        store = RedisStateStore(redis_client, "again")
    view = BatchView(history=[_point(5000)], scores=[0.5], history_length=10)
    assert store.save([("s", _blob(3))], view) == [True]
    assert store.save([("s", _blob(3))], view) == [True]
    assert _points(store, "s") == [5000]
    assert store.save([("s", _blob(4))], BatchView([_point(6000)], [0.5], history_length=10))
    assert _points(store, "s") == [5000, 6000]
