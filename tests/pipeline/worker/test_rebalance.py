"""A graceful handover commits: the member giving partitions away saves and commits what
it applied inside the rebalance, so the one taking them over replays nothing.

On kafka-python 3 the rebalance callback runs on the client's IO thread, where a commit
fails; the callback hands the checkpoint to a helper thread (pipeline.kafka.kafka_python).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from pipeline.local.stack import StackInfo
from pipeline.worker.wiring import create_topics, open_worker
from tests.pipeline.kafka.helpers import produce, sensor_events, test_settings
from tests.reliability.harness import WorkerThread, committed


@pytest.mark.parametrize("backend", ["kafka-python", "confluent"])
def test_no_replay_after_a_graceful_handover(
    stack: StackInfo, topic_names: Any, backend: str
) -> None:
    # A checkpoint only inside the rebalance: no interval ends, and the worker never idles.
    s = test_settings(stack, topic_names, kafka_backend=backend, commit_interval_ms=60_000,
                      session_timeout_ms=6000)  # fmt: skip
    create_topics(s)
    events = sensor_events(n_streams=40, per_stream=10, spike_at=None)
    produce(s.bootstrap_servers, s.events_topic, events)
    first = open_worker(s, client_id="first")
    second: WorkerThread | None = None
    try:
        deadline = time.monotonic() + 60
        while first.stats.records < len(events):
            assert time.monotonic() < deadline, "the first worker did not see every event"
            batch = first.source.poll(100, s.max_poll_records)
            if len(batch):
                first.process_with_retry(batch)
        assert committed(s) == 0  # all of it held, nothing saved or committed yet

        second = WorkerThread(open_worker(s, client_id="second"))
        deadline = time.monotonic() + 60
        while len(first.source.assignment()) == s.topic_partitions:  # the rebalance runs
            assert time.monotonic() < deadline, "no rebalance"  # inside the first's poll
            first.source.poll(100, s.max_poll_records)
        assert first.stats.commit_failures == 0
        assert committed(s) == len(events)

        deadline = time.monotonic() + 30
        while not second.worker.source.assignment():
            assert time.monotonic() < deadline, "the second worker got no partitions"
            time.sleep(0.1)
        time.sleep(2.0)  # it polls its partitions from the committed offsets: nothing left
        assert second.worker.stats.records == 0
    finally:
        if second is not None:
            second.stop()
        first.source.close()
        first.sink.close()
