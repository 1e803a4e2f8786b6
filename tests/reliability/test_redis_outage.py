"""Redis stopped for ~10 s and restarted while a worker runs.

The test starts its own redis-server (append-only file, fsync on every write, its own
directory) so the session's Redis is never touched and the states survive the restart.
The worker must pause on the batch it holds, commit nothing while Redis is away, retry
with backoff, and finish with exactly one uninterrupted run's states and alerts.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kafka import KafkaConsumer, TopicPartition

from pipeline.local.stack import StackInfo, free_port, redis_binary
from pipeline.settings import Settings
from tests.pipeline.kafka.helpers import produce
from tests.reliability.harness import (
    TOTAL,
    applied,
    assert_same_as_reference,
    events,
    fault_settings,
    kill_all,
    process_problem,
    spawn_worker,
    stop_process,
    wait_until,
)

OUTAGE_S = 10.0


class PersistentRedis:
    """A redis-server of this test's own whose data survives a stop and start."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._argv = [str(redis_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
                      "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                      "--dir", str(workdir), "--loglevel", "warning"]  # fmt: skip
        self._log = workdir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self._log, "ab") as log:
            self._proc = subprocess.Popen(self._argv, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                assert self._proc.poll() is None, self._log.read_text()[-1000:]
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        """SIGTERM: Redis finishes writing its append-only file, then exits."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(15)
        self._proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[PersistentRedis]:
    server = PersistentRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _committed(s: Settings) -> int:
    """Sum of the group's committed offsets over the events topic's partitions."""
    consumer = KafkaConsumer(bootstrap_servers=s.bootstrap_servers, group_id=s.group_id,
                             enable_auto_commit=False)  # fmt: skip
    try:
        return sum(consumer.committed(TopicPartition(s.events_topic, p)) or 0
                   for p in range(s.topic_partitions))  # fmt: skip
    finally:
        consumer.close()


def test_worker_pauses_while_redis_is_down_and_loses_nothing(
    stack: StackInfo, topic_names: Any, own_redis: PersistentRedis
) -> None:
    s = fault_settings(stack.bootstrap_servers, own_redis.url, topic_names)
    data = events(seed=31)
    half = TOTAL // 2
    produce(s.bootstrap_servers, s.events_topic, data[:half])
    worker = spawn_worker(s)
    try:
        alive = lambda: process_problem([worker])  # noqa: E731
        wait_until(lambda: applied(s) >= half, 60, "first half applied", alive)
        wait_until(lambda: _committed(s) == half, 10, "first half committed", alive)

        own_redis.stop()
        stopped = time.monotonic()
        produce(s.bootstrap_servers, s.events_topic, data[half:])
        # While Redis is away the worker holds its batch: alive, and committing nothing.
        while time.monotonic() - stopped < OUTAGE_S:
            assert process_problem([worker]) is None
            assert _committed(s) == half
            time.sleep(1.0)

        own_redis.start()
        wait_until(lambda: applied(s) >= TOTAL, 60, "all events applied", alive)
        wait_until(lambda: _committed(s) == TOTAL, 10, "all offsets committed", alive)
        log = stop_process(worker)
    finally:
        kill_all([worker])
    assert "Redis unavailable" in log  # it did meet the outage, and retried
    assert_same_as_reference(s, topic_names)
