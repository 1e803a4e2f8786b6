"""Seeing that the store forgot writes (restart, older snapshot, flush), for both stores,
and refusing a Redis that evicts keys."""

from __future__ import annotations

import pytest
import redis

from pipeline.state.base import HEADER, BatchView, StateLost, StateStore, generations_key
from pipeline.state.memory import MemoryStateStore
from pipeline.state.redis import EvictingRedis, RedisStateStore, refuse_evicting


def blob(partition: int, offset: int) -> bytes:
    return HEADER.pack(b"VG", 1, partition, offset)


def checkpoint(store: StateStore, items: list[tuple[str, bytes]]) -> list[bool]:
    """A save as the worker's checkpoint makes it (with a view: counted)."""
    n = len(items)
    return store.save(items, BatchView([b""] * n, [0.0] * n, history_length=0))


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> StateStore:
    if request.param == "memory":
        return MemoryStateStore("gen")
    client = request.getfixturevalue("redis_client")
    client.delete(generations_key("gen"))
    return RedisStateStore(client, "gen")


def _forget_everything(store: StateStore) -> None:
    if isinstance(store, RedisStateStore):
        store.client.flushdb()
    else:
        assert isinstance(store, MemoryStateStore)
        store.delete_all()
        store.generations.clear()


def test_a_flushed_store_is_seen_once_at_the_next_load(store: StateStore) -> None:
    assert checkpoint(store, [("a", blob(0, 5))]) == [True]
    assert store.load(["a"]) == [blob(0, 5)]
    _forget_everything(store)
    with pytest.raises(StateLost) as lost:
        store.load(["a"])
    assert (lost.value.seen, lost.value.found) == (1, 0)
    assert store.load(["a"]) == [None]  # reported once: the worker restores, then goes on


def test_a_save_into_a_flushed_store_happens_and_reports_the_loss(store: StateStore) -> None:
    checkpoint(store, [("a", blob(0, 5))])
    checkpoint(store, [("a", blob(0, 6))])
    _forget_everything(store)
    with pytest.raises(StateLost) as lost:
        checkpoint(store, [("b", blob(0, 7))])
    assert lost.value.written == [True]
    assert store.load(["b"]) == [blob(0, 7)]


def test_another_clients_saves_do_not_hide_a_rollback(redis_client: redis.Redis) -> None:
    """Each client counts its own saves: others saving after a rollback cannot make up for
    the ones it lost."""
    mine, other = RedisStateStore(redis_client, "gen2"), RedisStateStore(redis_client, "gen2")
    for offset in range(3):
        checkpoint(mine, [("a", blob(0, offset))])
    redis_client.hset(generations_key("gen2"), mine.generation.client, 1)  # the snapshot's
    for offset in range(10):
        checkpoint(other, [("b", blob(1, offset))])
    with pytest.raises(StateLost):
        mine.load(["a"])
    other.load(["b"])


def test_committed_marks_only_rise(store: StateStore) -> None:
    view = BatchView(history=[], scores=[], metrics=[("^committed:t:0", 40)])
    store.save([], view)
    late = BatchView(history=[], scores=[], metrics=[("^committed:t:0", 30), ("^committed:t:1", 9)])
    store.save([], late)  # a late save of a worker that lost partition 0
    assert store.committed_marks("t", [0, 1, 2]) == {0: 40, 1: 9}


def test_a_redis_that_evicts_any_key_is_refused_with_the_setting_named(
    redis_client: redis.Redis,
) -> None:
    refuse_evicting(redis_client)
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(EvictingRedis, match=r"maxmemory-policy is allkeys-lru.*noeviction"):
            refuse_evicting(redis_client)
        redis_client.config_set("maxmemory-policy", "volatile-lru")  # never touches states
        refuse_evicting(redis_client)
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
