"""Kill -9 workers at random points: the result must equal one uninterrupted run.

Workers run as real `vigil worker` processes against the session's broker and Redis
(20,000 events over 200 streams); the reference run is an in-process worker over the
same topic with its own group, Redis prefix and alerts topic (tests/reliability/harness).
"""

from __future__ import annotations

import random
import signal
from typing import Any

from pipeline.local.stack import StackInfo
from pipeline.settings import Settings
from tests.pipeline.kafka.helpers import produce, sensor_events
from tests.reliability.harness import (
    WorkerProcess,
    applied,
    assert_same_as_reference,
    fault_settings,
    kill_all,
    process_problem,
    spawn_worker,
    stop_process,
    wait_until,
)

N_STREAMS, PER_STREAM = 200, 100
TOTAL = N_STREAMS * PER_STREAM
STREAMS = [f"s-{i:04d}" for i in range(N_STREAMS)]


def _setup(stack: StackInfo, topic_names: Any) -> Settings:
    s = fault_settings(stack.bootstrap_servers, stack.redis_url, topic_names, max_poll_records=400)
    produce(s.bootstrap_servers, s.events_topic,
            sensor_events(N_STREAMS, PER_STREAM, seed=11, spike_at=80))  # fmt: skip
    return s


def _wait_applied(s: Settings, target: int, *procs: WorkerProcess) -> None:
    wait_until(
        lambda: applied(s, STREAMS) >= target,
        120,
        f"{target} events applied",
        lambda: process_problem(list(procs)),
    )


def test_kill_9_at_random_points_changes_nothing(stack: StackInfo, topic_names: Any) -> None:
    s = _setup(stack, topic_names)
    rng = random.Random(20261121)
    for target in sorted(rng.sample(range(TOTAL // 10, TOTAL * 9 // 10), 3)):
        proc = spawn_worker(s, idle_exit=8.0)
        try:
            _wait_applied(s, target, proc)
        finally:
            proc.send_signal(signal.SIGKILL)
            kill_all([proc])
    final = spawn_worker(s)
    try:
        _wait_applied(s, TOTAL, final)
        stop_process(final)  # SIGTERM: finish the batch, commit, leave; must exit 0
    finally:
        kill_all([final])

    assert_same_as_reference(s, topic_names, STREAMS, TOTAL)


def test_survivor_takes_over_with_hidden_state_intact(stack: StackInfo, topic_names: Any) -> None:
    s = _setup(stack, topic_names)
    a, b = spawn_worker(s), spawn_worker(s)
    try:
        _wait_applied(s, TOTAL // 3, a, b)
        a.send_signal(signal.SIGKILL)
        a.wait()
        _wait_applied(s, TOTAL, b)  # the survivor alone finishes every stream
        stop_process(b)
    finally:
        kill_all([a, b])

    # Same counts, statistics and hidden states as one uninterrupted run: the survivor
    # continued every stream from its saved state (a re-warm or reset would differ).
    assert_same_as_reference(s, topic_names, STREAMS, TOTAL)
