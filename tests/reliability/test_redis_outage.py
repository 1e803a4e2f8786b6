"""Redis stopped for ~10 s and restarted while a worker runs.

The test starts its own redis-server (append-only file, fsync on every write, its own
directory) so the session's Redis is never touched and the states survive the restart.
The worker must pause on the batch it holds, commit nothing while Redis is away, retry
with backoff, and finish with exactly one uninterrupted run's states and alerts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.local.stack import StackInfo
from tests.pipeline.kafka.helpers import produce
from tests.reliability.harness import (
    TOTAL,
    OwnRedis,
    applied,
    assert_same_as_reference,
    committed,
    events,
    fault_settings,
    kill_all,
    process_problem,
    spawn_worker,
    stop_process,
    wait_until,
)

OUTAGE_S = 10.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """Append-only file, fsync on every write: the states survive the restart."""
    server = OwnRedis(tmp_path, "--appendonly", "yes", "--appendfsync", "always", "--save", "")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_worker_pauses_while_redis_is_down_and_loses_nothing(
    stack: StackInfo, topic_names: Any, own_redis: OwnRedis
) -> None:
    s = fault_settings(stack.bootstrap_servers, own_redis.url, topic_names)
    data = events(seed=31)
    half = TOTAL // 2
    produce(s.bootstrap_servers, s.events_topic, data[:half])
    worker = spawn_worker(s)
    try:
        alive = lambda: process_problem([worker])  # noqa: E731
        wait_until(lambda: applied(s) >= half, 60, "first half applied", alive)
        wait_until(lambda: committed(s) == half, 10, "first half committed", alive)

        own_redis.stop()
        stopped = time.monotonic()
        produce(s.bootstrap_servers, s.events_topic, data[half:])
        # While Redis is away the worker holds its batch: alive, and committing nothing.
        while time.monotonic() - stopped < OUTAGE_S:
            assert process_problem([worker]) is None
            assert committed(s) == half
            time.sleep(1.0)

        own_redis.start()
        wait_until(lambda: applied(s) >= TOTAL, 60, "all events applied", alive)
        wait_until(lambda: committed(s) == TOTAL, 10, "all offsets committed", alive)
        log = stop_process(worker)
    finally:
        kill_all([worker])
    assert "Redis unavailable" in log  # it did meet the outage, and retried
    assert_same_as_reference(s, topic_names)
