"""Shared fixtures: one real broker + Redis for the whole session, isolated per test.

Isolation comes from names, not restarts: each test gets its own topics (`topic_names`)
and a flushed Redis (`redis_client`), so one stack serves the session. If the stack cannot
start, every test that needs it errors; nothing is skipped.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from pipeline.local.cluster import LocalCluster
from pipeline.local.stack import LocalStack, StackInfo
from pipeline.state.cluster import connect_cluster


@pytest.fixture(scope="session")
def stack() -> Iterator[StackInfo]:
    """A running LocalStack (Tansu + redis-server on free loopback ports)."""
    with LocalStack() as info:
        yield info


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[str]:
    """The URL (redis+cluster://) of a real 3-master Redis Cluster on loopback."""
    with LocalCluster() as url:
        yield url


@pytest.fixture
def cluster_client(redis_cluster: str) -> Iterator[RedisCluster]:
    """A client on the session's Redis Cluster, every primary emptied before the test."""
    client = connect_cluster(redis_cluster)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_client(stack: StackInfo) -> Iterator[redis.Redis]:
    """A client on the session's Redis, emptied before the test."""
    client = redis.Redis.from_url(stack.redis_url)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def topic_names(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Factory: topic_names("events") -> "vigil.events.<test name>.<8 hex>", unique per call,
    so tests sharing the session broker never read each other's records."""
    test = re.sub(r"[^A-Za-z0-9._-]+", "_", request.node.name)[:150]

    def make(kind: str = "events") -> str:
        return f"vigil.{kind}.{test}.{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture(autouse=True)
def vigil_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private VIGIL_HOME for every test, so none reads or writes ~/.vigil (autouse:
    a forgotten fixture must not leak a developer's `vigil stack up` into a test)."""
    home = tmp_path / "vigil-home"
    monkeypatch.setenv("VIGIL_HOME", str(home))
    return home
