"""A consumer slower than the poll interval: the group throws it out mid-batch.

One of two workers stalls inside a batch (after publishing its alerts, before saving its
states) for longer than max poll interval. The group moves its partitions to the other
worker, which replays them from the last committed offset while the slow one is still
holding its batch; the slow one then saves (fenced by offset) and fails to commit.
No event may be applied twice: the states must be one uninterrupted run's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest

from pipeline.kafka.base import EventSource
from pipeline.kafka.confluent import ConfluentSource
from pipeline.kafka.kafka_python import KafkaPythonSource
from pipeline.local.stack import StackInfo
from pipeline.settings import Settings
from pipeline.state.base import BatchView
from pipeline.state.redis import RedisStateStore, open_store
from tests.pipeline.kafka.helpers import produce
from tests.reliability.harness import (
    TOTAL,
    WorkerThread,
    applied,
    assert_same_as_reference,
    events,
    fault_settings,
    in_process_worker,
    wait_until,
)

POLL_INTERVAL_MS = 3000
STALL_S = 8.0
STALL_AT_SAVE = 3


class StallingStore(RedisStateStore):
    """The real Redis store, with one save (the STALL_AT_SAVE-th) made very slow."""

    def __init__(self, inner: RedisStateStore) -> None:
        super().__init__(inner.client, inner.prefix)
        self.saves = 0
        self.stalled = False  # the slow save started
        self.resumed = False  # ... and has returned

    def save(self, items: Sequence[tuple[str, bytes]], view: BatchView | None = None) -> list[bool]:
        self.saves += 1
        if self.saves == STALL_AT_SAVE:
            self.stalled = True
            time.sleep(STALL_S)
            written = super().save(items, view)
            self.resumed = True
            return written
        return super().save(items, view)


def _source(s: Settings, backend: str) -> EventSource:
    if backend == "confluent":
        return ConfluentSource(s, [s.events_topic],
                               overrides={"max.poll.interval.ms": POLL_INTERVAL_MS})  # fmt: skip
    return KafkaPythonSource(s, [s.events_topic],
                             overrides={"max_poll_interval_ms": POLL_INTERVAL_MS})  # fmt: skip


@pytest.mark.parametrize("backend", ["kafka-python", "confluent"])
def test_slow_consumer_thrown_out_of_the_group_applies_nothing_twice(
    stack: StackInfo, topic_names: Any, backend: str
) -> None:
    s = fault_settings(stack.bootstrap_servers, stack.redis_url, topic_names,
                       kafka_backend=backend, session_timeout_ms=POLL_INTERVAL_MS)  # fmt: skip
    produce(s.bootstrap_servers, s.events_topic, events(seed=51))
    store = StallingStore(open_store(s))
    slow = WorkerThread(in_process_worker(s, store=store, source=_source(s, backend)))
    fast = WorkerThread(in_process_worker(s, source=_source(s, backend)))
    try:
        wait_until(lambda: applied(s) >= TOTAL, 90, "all events applied",
                   lambda: slow.problem() or fast.problem())  # fmt: skip
        wait_until(lambda: store.resumed, 30, "the slow worker to come back", slow.problem)
    finally:
        slow_stats, fast_stats = slow.stop(), fast.stop()
    assert slow_stats.commit_failures >= 1  # it was thrown out while holding its batch
    assert fast_stats.records + slow_stats.records > TOTAL  # so someone replayed it
    assert_same_as_reference(s, topic_names)
