"""One suite for both state stores: the in-memory reference and Redis on a real server."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import cast

import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.contracts.history import encode_points, parse_history
from pipeline.state.base import (
    HEADER,
    MAX_OFFSET,
    BatchView,
    StateStore,
    StoreUnavailable,
    history_key,
    meta_key,
    scores_key,
    state_key,
)
from pipeline.state.cluster import ClusterStateStore
from pipeline.state.memory import MemoryStateStore
from pipeline.state.redis import RedisStateStore, connect_redis

MakeStore = Callable[[str], StateStore]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["memory", "redis", "cluster"])
def make_store(request: pytest.FixtureRequest) -> MakeStore:
    """Builds stores of one backend; several prefixes may share the same Redis (Cluster)."""
    if request.param == "memory":
        return lambda prefix: MemoryStateStore(prefix)
    if request.param == "cluster":
        cluster = request.getfixturevalue("cluster_client")
        return lambda prefix: ClusterStateStore(cluster, prefix)
    client = request.getfixturevalue("redis_client")
    return lambda prefix: RedisStateStore(client, prefix)


@pytest.fixture
def store(make_store: MakeStore) -> StateStore:
    return make_store("test")


def blob(partition: int, offset: int, payload: bytes = b"", layout: int = 1) -> bytes:
    return HEADER.pack(b"VG", layout, partition, offset) + payload


MALICIOUS = [
    "}",
    "{",
    "{x}",
    "x}{y",
    "a:b",
    "%7B",
    "%7D",
    "%25",
    "%",
    "*",
    "[a]",
    "\\",
    "test:s:{x}",
    "émoji-😀-流",
    "a" * 200,
]


def test_load_missing_is_none(store: StateStore) -> None:
    assert store.load(["nope", "also-nope"]) == [None, None]
    assert store.load([]) == []


def test_round_trip_is_byte_exact(store: StateStore) -> None:
    payload = bytes(range(256)) * 40  # every byte value, including NUL and 0xff
    first, second = blob(3, 17, payload), blob(0, 0)
    assert store.save([("s1", first), ("s2", second)]) == [True, True]
    assert store.load(["s2", "missing", "s1"]) == [second, None, first]
    assert store.save([]) == []


def test_fencing_same_partition(store: StateStore) -> None:
    assert store.save([("s", blob(1, 10, b"ten"))]) == [True]
    assert store.save([("s", blob(1, 9, b"nine"))]) == [False]
    assert store.save([("s", blob(1, 10, b"other ten"))]) == [False]
    assert store.load(["s"]) == [blob(1, 10, b"ten")]
    assert store.save([("s", blob(1, 11, b"eleven"))]) == [True]
    assert store.load(["s"]) == [blob(1, 11, b"eleven")]


def test_different_partition_overwrites(store: StateStore) -> None:
    assert store.save([("s", blob(1, 500))]) == [True]
    assert store.save([("s", blob(2, 3, b"moved"))]) == [True]
    assert store.load(["s"]) == [blob(2, 3, b"moved")]


def test_resending_identical_bytes_counts_as_written(store: StateStore) -> None:
    """A save retried after a lost reply must not look like a lost partition."""
    state = blob(0, 42, b"h")
    assert store.save([("s", state)]) == [True]
    assert store.save([("s", state)]) == [True]
    assert store.load(["s"]) == [state]


def test_offsets_near_lua_precision_limit(store: StateStore) -> None:
    top = 2**31 - 1
    assert store.save([("s", blob(top, MAX_OFFSET - 1))]) == [True]
    assert store.save([("s", blob(top, MAX_OFFSET - 2))]) == [False]
    assert store.save([("s", blob(top, MAX_OFFSET))]) == [True]
    assert store.save([("s", blob(top, MAX_OFFSET - 1, b"x"))]) == [False]
    assert store.load(["s"]) == [blob(top, MAX_OFFSET)]


def test_mixed_batch(store: StateStore) -> None:
    store.save([("a", blob(0, 5)), ("b", blob(0, 5)), ("c", blob(0, 5))])
    results = store.save(
        [
            ("a", blob(0, 4, b"older")),
            ("b", blob(0, 6, b"newer")),
            ("new", blob(0, 1)),
            ("c", blob(1, 0, b"other partition")),
            ("a", blob(0, 5, b"equal")),
        ]
    )
    assert results == [False, True, True, True, False]
    assert store.load(["a", "b", "c", "new"]) == [
        blob(0, 5),
        blob(0, 6, b"newer"),
        blob(1, 0, b"other partition"),
        blob(0, 1),
    ]


def test_same_stream_twice_in_a_batch_acts_in_order(store: StateStore) -> None:
    assert store.save([("s", blob(0, 1)), ("s", blob(0, 2)), ("s", blob(0, 2, b"x"))]) == [
        True,
        True,
        False,
    ]
    assert store.load(["s"]) == [blob(0, 2)]


def test_malicious_stream_ids_get_distinct_keys() -> None:
    keys = [state_key("vigil", s) for s in MALICIOUS]
    assert len(set(keys)) == len(MALICIOUS)
    for key in keys:
        assert key.startswith("vigil:s:{") and key.endswith("}")
        # Exactly one hash tag: the stream can neither open nor close one of its own.
        assert key.count("{") == 1 and key.count("}") == 1
    assert state_key("p", "%7B") != state_key("p", "{")
    assert state_key("p", "a") == state_key("p", "a")  # deterministic
    assert meta_key("p", "a") != state_key("p", "a")


def test_malicious_stream_ids_round_trip(store: StateStore) -> None:
    items = [(s, blob(0, i, s.encode())) for i, s in enumerate(MALICIOUS)]
    assert store.save(items) == [True] * len(items)
    assert store.load(MALICIOUS) == [b for _, b in items]
    assert store.count() == len(MALICIOUS)


def test_malicious_ids_stay_under_prefix_in_redis(redis_client: redis.Redis) -> None:
    store = RedisStateStore(redis_client, "vigil")
    store.save([(s, blob(0, 1)) for s in MALICIOUS])
    stored = {k.decode() for k in cast("list[bytes]", redis_client.keys("*"))}
    assert stored == {state_key("vigil", s) for s in MALICIOUS}


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("", "non-empty"),
        ("a" * 201, "longer than 200"),
        ("a\nb", "control character"),
        ("\x00", "control character"),
        ("\ud800", "surrogate"),
    ],
)
def test_invalid_stream_ids_are_refused(store: StateStore, stream: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        store.save([(stream, blob(0, 1))])
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=message):
        store.load([stream])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"VG\x01\x00", "shorter than"),
        (b"XX" + blob(0, 1)[2:], "does not start"),
        (blob(-1, 1), "invalid partition"),
        (blob(0, -1), "invalid partition"),
        (blob(0, MAX_OFFSET + 1), "invalid partition"),
    ],
)
def test_bad_blob_refuses_whole_batch(store: StateStore, bad: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store.save([("good", blob(0, 1)), ("bad", bad)])
    assert store.load(["good", "bad"]) == [None, None]


@pytest.mark.parametrize("prefix", ["", "a{b", "a}b", "a b", "a\tb"])
def test_invalid_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        MemoryStateStore(prefix)
    with pytest.raises(ValueError, match="prefix"):
        state_key(prefix, "s")


def test_delete_all_only_touches_its_prefix(make_store: MakeStore) -> None:
    # "test:s" is the nastiest neighbour: its keys start with "test:s:".
    mine, neighbours = make_store("test"), [make_store(p) for p in ("test:s", "tes", "test2")]
    mine.save([("x", blob(0, 1)), ("y", blob(0, 1))])
    mine.set_meta("model", b"v1")
    for other in neighbours:
        other.save([("x", blob(0, 1))])
        other.set_meta("model", b"v0")
    mine.delete_all()
    assert mine.load(["x", "y"]) == [None, None]
    assert mine.count() == 0
    assert mine.get_meta("model") is None
    for other in neighbours:
        assert other.load(["x"]) == [blob(0, 1)]
        assert other.count() == 1
        assert other.get_meta("model") == b"v0"


def test_delete_all_keeps_unrelated_redis_keys(redis_client: redis.Redis) -> None:
    redis_client.set("test:other", b"keep")
    redis_client.set("unrelated", b"keep")
    store = RedisStateStore(redis_client, "te*t")  # glob characters are escaped in SCAN
    store.save([("x", blob(0, 1))])
    RedisStateStore(redis_client, "test").save([("x", blob(0, 1))])
    store.delete_all()
    assert store.count() == 0
    assert redis_client.get("test:other") == b"keep"
    assert redis_client.get("unrelated") == b"keep"
    assert RedisStateStore(redis_client, "test").count() == 1


def test_count_ignores_meta(store: StateStore) -> None:
    assert store.count() == 0
    store.save([(f"s{i}", blob(0, i)) for i in range(25)])
    store.set_meta("model", b"v")
    assert store.count() == 25


def test_stored_bytes(store: StateStore) -> None:
    assert store.stored_bytes("missing") == 0
    state = blob(0, 1, b"\x00" * 1000)
    store.save([("s", state)])
    assert store.stored_bytes("s") >= len(state)


def test_meta_round_trip(store: StateStore) -> None:
    assert store.get_meta("model_version") is None
    store.set_meta("model_version", b"7")
    store.set_meta("model_version", b"8")
    store.set_meta("{odd}", b"\x00\xff")
    assert store.get_meta("model_version") == b"8"
    assert store.get_meta("{odd}") == b"\x00\xff"
    # A stream and a meta value with the same name do not collide.
    store.save([("model_version", blob(0, 1))])
    assert store.get_meta("model_version") == b"8"


def test_script_reloaded_after_flush(redis_client: redis.Redis) -> None:
    store = RedisStateStore(redis_client, "test")
    assert store.save([("s", blob(0, 1))]) == [True]
    redis_client.script_flush()
    assert store.save([("s", blob(0, 1, b"x")), ("s", blob(0, 2))]) == [False, True]


def test_two_workers_share_fencing(redis_client: redis.Redis) -> None:
    """The worker that lost the partition lags behind; the new owner's state survives."""
    old_owner = RedisStateStore(redis_client, "test")
    new_owner = RedisStateStore(connect_redis(_url_of(redis_client)), "test")
    assert new_owner.save([("s", blob(2, 100, b"new owner"))]) == [True]
    assert old_owner.save([("s", blob(2, 90, b"stale"))]) == [False]
    assert old_owner.load(["s"]) == [blob(2, 100, b"new owner")]


def _url_of(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def test_redis_down_raises_store_unavailable() -> None:
    store = RedisStateStore(connect_redis(f"redis://127.0.0.1:{_free_port()}/0"), "test")
    calls: list[Callable[[], object]] = [
        lambda: store.load(["s"]),
        lambda: store.save([("s", blob(0, 1))]),
        store.count,
        store.delete_all,
        lambda: store.stored_bytes("s"),
        lambda: store.get_meta("m"),
        lambda: store.set_meta("m", b"v"),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable, match="Redis unavailable"):
            call()


def test_bad_url_is_one_line_without_secret() -> None:
    with pytest.raises(ValueError, match="invalid Redis URL") as info:
        connect_redis("http://user:hunter2@localhost:6379")
    assert "hunter2" not in str(info.value) and "\n" not in str(info.value)


_ops = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "{c}"]),
        st.integers(0, 2),
        st.integers(0, 6),
        st.binary(max_size=4),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(_ops, min_size=1, max_size=4))
def test_redis_matches_memory_reference(
    redis_client: redis.Redis, batches: list[list[tuple[str, int, int, bytes]]]
) -> None:
    """The Lua fencing rule and the Python one agree on any sequence of batches."""
    real = RedisStateStore(redis_client, "prop")
    real.delete_all()
    reference = MemoryStateStore("prop")
    for batch in batches:
        items = [(s, blob(p, o, payload)) for s, p, o, payload in batch]
        assert real.save(items) == reference.save(items)
    streams = ["a", "b", "{c}"]
    assert real.load(streams) == reference.load(streams)


_history_ops = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.integers(0, 3),  # points in this batch
        st.sampled_from([("value",), ("amount", "risk")]),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(_history_ops, min_size=1, max_size=5), keep=st.integers(1, 5))
def test_redis_history_matches_memory_reference(
    redis_client: redis.Redis,
    batches: list[list[tuple[str, int, tuple[str, ...]]]],
    keep: int,
) -> None:
    """The Lua history append-and-trim and `append_points` agree, point for point."""
    redis_client.flushdb()
    real = RedisStateStore(redis_client, "hist")
    reference = MemoryStateStore("hist")
    offset = 0
    for batch in batches:
        items, history = [], []
        for stream, n_points, features in batch:
            offset += 1
            items.append((stream, blob(0, offset)))
            ts = np.arange(offset * 10, offset * 10 + n_points, dtype=np.int64)
            encoded = encode_points(
                np.zeros(n_points, dtype=np.int64), [features], ts,
                np.full(n_points, 0.25, np.float32), np.zeros(n_points, bool),
                np.ones((n_points, 4), np.float32) * offset, np.zeros((n_points, 4), np.float32),
            )  # fmt: skip
            history.append(encoded.get(0, b""))
        view = BatchView(history=history, scores=[0.5] * len(items), history_length=keep)
        assert real.save(items, view) == reference.save(items, view)
    for stream in ("a", "b"):
        stored = redis_client.get(history_key("hist", stream))
        assert stored == reference.history.get(stream)
        assert len(parse_history(stored)) <= keep


@pytest.mark.parametrize("history_length", [0, 3])
def test_score_index_over_many_streams_matches_reference(
    redis_client: redis.Redis, history_length: int
) -> None:
    """The Lua script ranks streams in chunks; every accepted stream lands with its own
    score, refused ones keep their old one, with or without history keys in the call."""
    redis_client.flushdb()
    real = RedisStateStore(redis_client, "rank")
    reference = MemoryStateStore("rank")
    streams = [f"s-{i}" for i in range(1_234)]
    first = [(s, blob(0, 10)) for s in streams]
    view = BatchView(history=[b""] * len(first), scores=[0.1] * len(first),
                     history_length=history_length)  # fmt: skip
    assert real.save(first, view) == reference.save(first, view)
    # Every third stream replays an old offset (refused); the rest move on.
    second = [(s, blob(0, 5 if i % 3 == 0 else 11)) for i, s in enumerate(streams)]
    scores = [round(i / 1_234, 6) for i in range(len(second))]
    view = BatchView(history=[b""] * len(second), scores=scores, history_length=history_length)
    assert real.save(second, view) == reference.save(second, view)
    ranked = dict(redis_client.zrange(scores_key("rank"), 0, -1, withscores=True))
    assert {k.decode(): v for k, v in ranked.items()} == pytest.approx(reference.scores)
    assert sum(1 for v in reference.scores.values() if v == 0.1) == 412
