"""Three workers in one group while events keep arriving: each join and each leave moves
partitions mid-stream (revoke: save and commit; assign: load from Redis), and the end
result must still be one uninterrupted run's, event for event."""

from __future__ import annotations

import threading
from typing import Any

from pipeline.local.stack import StackInfo
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

CHUNKS = 20


def _produce_over_time(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """The events in CHUNKS pieces a moment apart: load arrives while the group changes."""
    step = -(-len(records) // CHUNKS)
    stop = threading.Event()
    for start in range(0, len(records), step):
        produce(bootstrap, topic, records[start : start + step])
        stop.wait(0.5)


def test_three_workers_join_and_leave_under_load(stack: StackInfo, topic_names: Any) -> None:
    s = fault_settings(stack.bootstrap_servers, stack.redis_url, topic_names, topic_partitions=6,
                       max_poll_records=100, session_timeout_ms=6000)  # fmt: skip
    producer = threading.Thread(
        target=_produce_over_time, args=(s.bootstrap_servers, s.events_topic, events(seed=33))
    )
    producer.start()
    workers = [spawn_worker(s)]
    try:
        # A second and a third worker join part-way (two rebalances under load) ...
        for share in (4, 2):
            wait_until(lambda share=share: applied(s) >= TOTAL // share, 120,  # type: ignore[misc]
                       f"1/{share} applied", lambda: process_problem(workers))  # fmt: skip
            workers.append(spawn_worker(s))
        # ... and one leaves cleanly before the end (a third).
        wait_until(lambda: applied(s) >= TOTAL * 3 // 4, 120, "3/4 applied",
                   lambda: process_problem(workers))  # fmt: skip
        stop_process(workers.pop(0))
        wait_until(lambda: applied(s) >= TOTAL, 180, "all events applied",
                   lambda: process_problem(workers))  # fmt: skip
        producer.join()
        for proc in workers:
            stop_process(proc)
    finally:
        producer.join()
        kill_all(workers)
    assert_same_as_reference(s, topic_names)
