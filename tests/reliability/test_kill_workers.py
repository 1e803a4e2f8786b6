"""Kill -9 workers at random points, repeatedly, with two workers in the group.

Each kill leaves the group with a member that never said goodbye: its partitions stay
assigned until the session times out, then move to the survivor, which replays from the
last committed offset. A replacement then joins and the partitions move again. Whatever
the moments, the result must be one uninterrupted run's.
"""

from __future__ import annotations

import random
import signal
from typing import Any

import pytest

from pipeline.local.stack import StackInfo
from tests.pipeline.kafka.helpers import produce
from tests.reliability.harness import (
    TOTAL,
    WorkerProcess,
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

KILLS = 3


@pytest.mark.parametrize("store", ["redis", "cluster"])
def test_kill_9_two_workers_repeatedly_changes_nothing(
    stack: StackInfo, topic_names: Any, request: pytest.FixtureRequest, store: str
) -> None:
    """On one Redis and on a 3-master Redis Cluster (per-slot fenced saves)."""
    url = stack.redis_url if store == "redis" else request.getfixturevalue("redis_cluster")
    # Small batches and a short session: many commit points to die between, quick failover.
    s = fault_settings(stack.bootstrap_servers, url, topic_names,
                       max_poll_records=50, session_timeout_ms=3000)  # fmt: skip
    produce(s.bootstrap_servers, s.events_topic, events(seed=21))
    rng = random.Random(20261121)
    targets = sorted(rng.sample(range(TOTAL // 10, TOTAL * 7 // 10), KILLS))
    workers: list[WorkerProcess] = [spawn_worker(s), spawn_worker(s)]
    at_kill: list[int] = []
    try:
        for target in targets:
            wait_until(lambda t=target: applied(s) >= t, 90, f"{target} applied",  # type: ignore[misc]
                       lambda: process_problem(workers))  # fmt: skip
            victim = workers.pop(rng.randrange(len(workers)))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            at_kill.append(applied(s))
            victim.forget()
            workers.append(spawn_worker(s))
        wait_until(lambda: applied(s) >= TOTAL, 120, "all events applied",
                   lambda: process_problem(workers))  # fmt: skip
        for proc in workers:
            stop_process(proc)
    finally:
        kill_all(workers)
    assert max(at_kill) < TOTAL, at_kill  # every kill landed mid-run
    assert_same_as_reference(s, topic_names)
