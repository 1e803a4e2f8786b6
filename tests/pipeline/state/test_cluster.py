"""The Redis Cluster store on a real 3-master cluster: what test_store's shared suite does
not cover — batches spread over slots and nodes, the view keys in slots of their own, a
slot that moves to another node under a client with a stale slot map, a node that dies."""

from __future__ import annotations

import time
from typing import cast

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.cluster import RedisCluster

from pipeline.local.cluster import LocalCluster
from pipeline.settings_loader import load_settings
from pipeline.state.base import (
    BatchView,
    StoreUnavailable,
    alerts_key,
    history_key,
    metrics_key,
    scores_key,
    state_key,
)
from pipeline.state.cluster import ClusterStateStore, connect_cluster
from pipeline.state.memory import MemoryStateStore
from pipeline.state.peaks import peak_key, ranked_peaks, write_peaks
from pipeline.state.redis import open_store
from tests.pipeline.state.test_store import blob

STREAMS = [f"stream-{i}" for i in range(12)]  # spread over all three masters


def test_stream_keys_share_a_slot_and_streams_spread(cluster_client: RedisCluster) -> None:
    for stream in STREAMS:
        assert cluster_client.keyslot(state_key("p", stream)) == cluster_client.keyslot(
            history_key("p", stream)
        )
    nodes = {cluster_client.get_node_from_key(state_key("p", s)).name for s in STREAMS}
    assert len(nodes) == 3


_ops = st.lists(
    st.tuples(
        st.sampled_from(STREAMS), st.integers(0, 2), st.integers(0, 6), st.binary(max_size=4)
    ),
    min_size=1,
    max_size=20,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(_ops, min_size=1, max_size=4))
def test_cluster_matches_memory_reference(
    cluster_client: RedisCluster, batches: list[list[tuple[str, int, int, bytes]]]
) -> None:
    """Per-slot fenced calls answer exactly as one batch on one Redis would, in order."""
    real = ClusterStateStore(cluster_client, "prop")
    real.delete_all()
    reference = MemoryStateStore("prop")
    for batch in batches:
        items = [(s, blob(p, o, payload)) for s, p, o, payload in batch]
        view = BatchView(history=[b""] * len(items), scores=[o / 10 for _, _, o, _ in batch],
                         history_length=0)  # fmt: skip
        assert real.save(items, view) == reference.save(items, view)
    assert real.load(STREAMS) == reference.load(STREAMS)
    ranked = dict(cluster_client.zrange(scores_key("prop"), 0, -1, withscores=True))
    assert {k.decode(): v for k, v in ranked.items()} == pytest.approx(reference.scores)
    cluster_client.delete(scores_key("prop"))


def test_view_keys_get_alerts_and_counters(cluster_client: RedisCluster) -> None:
    store = ClusterStateStore(cluster_client, "v")
    items = [(s, blob(0, 5)) for s in STREAMS]
    view = BatchView(history=[b""] * len(items), scores=[0.5] * len(items),
                     alerts=[b"a1", b"a2"], metrics=[("events", 12.0), ("=model", "v3")],
                     history_length=0)  # fmt: skip
    assert store.save(items, view) == [True] * len(items)
    assert store.save(items[:2], BatchView([b""] * 2, [0.9] * 2, metrics=[("events", 2.0)],
                                           history_length=0)) == [True, True]  # fmt: skip
    alerts = cluster_client.xrange(alerts_key("v"))
    assert [fields[b"alert"] for _, fields in alerts] == [b"a1", b"a2"]
    assert cluster_client.hgetall(metrics_key("v")) == {b"events": b"14", b"model": b"v3"}
    assert cluster_client.zcard(scores_key("v")) == len(STREAMS)


def _move_slot(client: RedisCluster, key: str) -> None:
    """Migrate the key's slot to another master, as `redis-cli --cluster reshard` does."""
    slot = client.keyslot(key)
    source = client.get_node_from_key(key)
    target = next(n for n in client.get_primaries() if n.name != source.name)
    src, dst = source.redis_connection, target.redis_connection
    assert src is not None and dst is not None
    src_id, dst_id = src.cluster("MYID"), dst.cluster("MYID")
    dst.cluster("SETSLOT", slot, "IMPORTING", src_id)
    src.cluster("SETSLOT", slot, "MIGRATING", dst_id)
    for name in src.cluster("GETKEYSINSLOT", slot, 100):
        src.migrate(target.host, target.port, name, 0, 5000)
    for node in client.get_primaries():
        assert node.redis_connection is not None
        node.redis_connection.cluster("SETSLOT", slot, "NODE", dst_id)


def test_moved_slot_is_followed(redis_cluster: str, cluster_client: RedisCluster) -> None:
    """A client with a stale slot map gets MOVED; it refreshes and resends, and the
    resend is fenced like any other save."""
    store = ClusterStateStore(connect_cluster(redis_cluster), "mv")
    items = [(s, blob(1, 10, s.encode())) for s in STREAMS]
    assert store.save(items) == [True] * len(items)
    _move_slot(cluster_client, state_key("mv", STREAMS[0]))
    assert store.load(STREAMS) == [b for _, b in items]
    newer = [(s, blob(1, 11)) for s in STREAMS[:3]]
    assert store.save([*newer, (STREAMS[0], blob(1, 10, b"old"))]) == [True, True, True, False]
    assert store.load(STREAMS[:3]) == [b for _, b in newer]


def test_dead_node_raises_store_unavailable_then_recovers_nothing_lost() -> None:
    """With a master down (no replica here) its slots cannot be served: the store says
    StoreUnavailable, the worker's cue to pause without committing."""
    cluster = LocalCluster()
    store = ClusterStateStore(connect_cluster(cluster.start()), "dn")
    try:
        assert store.save([(s, blob(0, 1)) for s in STREAMS]) == [True] * len(STREAMS)
        cluster.kill_node(1)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="Redis Cluster unavailable"):
            store.save([(s, blob(0, 2)) for s in STREAMS])
        assert time.monotonic() - started < 60
    finally:
        cluster.stop()


def test_settings_select_the_cluster_store(redis_cluster: str) -> None:
    store = open_store(load_settings(None, redis_url=redis_cluster, redis_prefix="sel"))
    assert isinstance(store, ClusterStateStore)
    assert store.save([("x", blob(0, 1))]) == [True]
    assert store.count() == 1


def test_scripts_reloaded_after_flush(cluster_client: RedisCluster) -> None:
    store = ClusterStateStore(cluster_client, "fl")
    assert store.save([(s, blob(0, 1)) for s in STREAMS]) == [True] * len(STREAMS)
    for node in cluster_client.get_primaries():
        assert node.redis_connection is not None
        node.redis_connection.script_flush()
    assert store.save([(s, blob(0, 2)) for s in STREAMS]) == [True] * len(STREAMS)


def test_peak_ranking_over_buckets_on_a_cluster(
    cluster_client: RedisCluster, redis_client: redis.Redis
) -> None:
    """The bucket keys sit in different slots: the union is done by the client, and it
    ranks exactly as ZUNION AGGREGATE MAX does on one Redis."""
    hour = 3_600_000
    peaks = {(0, "a"): 0.7, (hour, "a"): 0.9, (hour, "b"): 0.95, (2 * hour, "c"): 0.8,
             (2 * hour, "b"): 0.6}  # fmt: skip
    buckets = [0, hour, 2 * hour]
    assert len({cluster_client.keyslot(peak_key("pk", b)) for b in buckets}) == 3
    ClusterStateStore(cluster_client, "pk").save_peaks(peaks, 3600)
    write_peaks(redis_client, "pk", peaks, 3600)
    expected = ranked_peaks(redis_client, "pk", buckets, 10)
    assert expected == [("b", 0.95), ("a", 0.9), ("c", 0.8)]
    assert ranked_peaks(cast("redis.Redis", cluster_client), "pk", buckets, 10) == expected
    assert ranked_peaks(cast("redis.Redis", cluster_client), "pk", buckets, 2) == expected[:2]
