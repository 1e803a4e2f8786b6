"""Redis forgets states while a worker processes 3,000 streams: never a silent loss.

Each test runs its own redis-server. Killed with -9 without persistence, Redis comes
back empty; killed with -9 after an RDB snapshot, it comes back as it was at the
snapshot (a rollback). Either way the worker must see it (its save counter in Redis went
back), restore the states from the changelog topic and finish with exactly one
uninterrupted run's states and alert ids. A Redis that evicts keys when full is refused
at start, with one line naming the setting, before anything is committed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.local.stack import StackInfo
from tests.pipeline.kafka.helpers import produce, sensor_events
from tests.reliability.harness import (
    OwnRedis,
    applied,
    assert_same_as_reference,
    committed,
    fault_settings,
    kill_all,
    process_problem,
    spawn_worker,
    stop_process,
    wait_until,
    worker_env,
)

N_STREAMS, PER_STREAM, SPIKE_AT = 3000, 14, 12
STREAMS = [f"s-{i:04d}" for i in range(N_STREAMS)]
TOTAL = N_STREAMS * PER_STREAM


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """No append-only file and no automatic snapshot: only what a test SAVEs survives."""
    server = OwnRedis(tmp_path, "--appendonly", "no", "--save", "")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("persistence", ["none", "rdb"])
def test_redis_killed_while_busy_loses_nothing(
    stack: StackInfo, topic_names: Any, volatile_redis: OwnRedis, persistence: str
) -> None:
    s = fault_settings(stack.bootstrap_servers, volatile_redis.url, topic_names, warmup_events=5,
                       max_poll_records=2000, kafka_backend="confluent")  # fmt: skip
    data = sensor_events(N_STREAMS, PER_STREAM, seed=41, spike_at=SPIKE_AT)
    half = TOTAL // 2
    produce(s.bootstrap_servers, s.events_topic, data[:half])
    worker = spawn_worker(s)
    try:
        alive = lambda: process_problem([worker])  # noqa: E731
        wait_until(lambda: committed(s) == half, 120, "first half committed", alive)
        if persistence == "rdb":
            volatile_redis.client().save()  # what a restart will bring back
        produce(s.bootstrap_servers, s.events_topic, data[half:])
        wait_until(lambda: applied(s, STREAMS) >= half + TOTAL // 5, 120, "busy", alive)
        volatile_redis.kill()
        volatile_redis.start()
        wait_until(lambda: applied(s, STREAMS) >= TOTAL, 180, "all events applied", alive)
        wait_until(lambda: committed(s) == TOTAL, 30, "all offsets committed", alive)
        log = stop_process(worker)
    finally:
        kill_all([worker])
    assert "Redis lost saved states" in log and "restored" in log
    metrics = volatile_redis.client().hgetall(f"{s.redis_prefix}:metrics")
    assert float(metrics[b"state_losses"]) >= 1
    assert_same_as_reference(s, topic_names, STREAMS, TOTAL)


def test_a_redis_that_evicts_keys_is_refused_before_anything_is_committed(
    stack: StackInfo, topic_names: Any, volatile_redis: OwnRedis
) -> None:
    """allkeys-lru at its limit evicts states (issue 17 found 30,684 keys gone): refused."""
    client = volatile_redis.client()
    client.config_set("maxmemory", "2mb")
    client.config_set("maxmemory-policy", "allkeys-lru")
    s = fault_settings(stack.bootstrap_servers, volatile_redis.url, topic_names)
    produce(s.bootstrap_servers, s.events_topic, sensor_events(20, 5, spike_at=None))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli.main", "worker", "--idle-exit", "5"],
        env=worker_env(s), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "maxmemory-policy is allkeys-lru" in lines[0], done.stderr
    assert committed(s) == 0
    assert client.dbsize() == 0
