"""A worker's health port, on the in-memory Kafka double and the session's real Redis."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pipeline.contracts.deadletter import MALFORMED_JSON
from pipeline.kafka.memory import MemoryBroker
from pipeline.local.stack import StackInfo
from pipeline.worker.health import STALL_SECONDS, health, readiness, start_server, stop_server
from tests.pipeline.kafka.helpers import memory_worker, sensor_events, test_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_for(port: int, path: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        code, body = get(port, path)
        if code == 200:
            result: dict[str, Any] = json.loads(body)
            return result
        assert time.monotonic() < deadline, f"{path} still {code}: {body!r}"
        time.sleep(0.1)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_probes_and_metrics_follow_the_loop(stack: StackInfo, topic_names: Any) -> None:
    port = free_port()
    s = test_settings(stack, topic_names, worker_http_port=port, commit_interval_ms=0)
    events = sensor_events(n_streams=5, per_stream=60)
    broker = MemoryBroker()
    broker.produce_all(s.events_topic, [*events, (b"bad", b"{not json")])
    worker = memory_worker(s, broker)
    server = start_server(worker, s)
    try:
        assert get(port, "/healthz") == (200, b'{"status": "starting"}')
        assert get(port, "/readyz")[0] == 503  # the loop has not polled yet
        thread = threading.Thread(target=worker.run, kwargs={"idle_exit_s": 30})
        thread.start()
        assert wait_for(port, "/readyz")["checks"] == {
            "loop": "running",
            "redis": "ok",
            "state": "ok",
        }
        assert wait_for(port, "/healthz") == {"status": "ok"}
        deadline = time.monotonic() + 60
        while worker.stats.records < len(events) + 1:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.1)
        code, body = get(port, "/metrics")
        assert code == 200
        found = samples(body.decode())
        assert found[("vigil_worker_records_total", ())] == len(events) + 1
        assert found[("vigil_worker_events_applied_total", ())] == len(events)
        assert found[("vigil_worker_streams_created_total", ())] == 5
        assert found[("vigil_worker_deadletters_total", (("reason", MALFORMED_JSON),))] == 1
        batches = found[("vigil_worker_batch_duration_seconds_count", ())]
        assert batches == worker.stats.batches >= 1
        assert found[("vigil_worker_batch_duration_seconds_bucket", (("le", "+Inf"),))] == batches
        for name in ("fencing_refusals", "states_reset", "store_retries", "model_swaps"):
            assert found[(f"vigil_worker_{name}_total", ())] == 0
        assert get(port, "/nothing")[0] == 404
        worker.stop()
        thread.join(30)
        assert get(port, "/readyz")[0] == 503  # stopping: out of rotation
    finally:
        worker.stop()
        stop_server(server)


def test_a_loop_that_stops_turning_fails_liveness(stack: StackInfo, topic_names: Any) -> None:
    s = test_settings(stack, topic_names)
    worker = memory_worker(s, MemoryBroker())
    try:
        worker.run(idle_exit_s=0)
        assert worker.turned_at is not None
        assert health(worker, now=worker.turned_at + 1)[0] == 200
        code, body = health(worker, now=worker.turned_at + STALL_SECONDS + 1)
        assert code == 503 and body["status"] == "stalled"
        # Redis failing: the loop still turns (retrying), so alive, but not ready.
        worker.store_down = True
        assert health(worker, now=worker.turned_at + 1)[0] == 200
        assert readiness(worker)[1]["checks"]["redis"] == "failing"
    finally:
        worker.stop()


def test_a_rebalance_that_never_completes_fails_liveness(
    stack: StackInfo, topic_names: Any
) -> None:
    """A member whose rebalance never completes (a group that cannot settle) makes no
    progress although its loop turns: after worker_stall_seconds it is not live."""
    s = test_settings(stack, topic_names, worker_stall_seconds=60)
    worker = memory_worker(s, MemoryBroker())
    assert worker.rebalancing_since is not None  # not assigned yet
    worker.source.poll(0, 1)  # the join completes
    assert worker.rebalancing_since is None and worker.source.assignment()
    worker._revoked(set())  # what the client calls when the next rebalance starts
    worker.turned(0)  # its loop still turns: polls that bring nothing
    since = worker.progress_at
    assert health(worker, now=since + 59)[0] == 200
    code, body = health(worker, now=since + 61)
    assert code == 503 and body["status"] == "no_progress" and body["rebalancing"]
    worker.store_down = True  # a Redis outage is not the worker's to fix by a restart
    assert health(worker, now=since + 61)[0] == 200
    worker.store_down = False
    worker._assigned(worker.source.assignment())  # the client: the rebalance completed
    worker._rebalanced = False  # the next poll brings no rebalance: the group is settled
    worker.turned(0)
    assert health(worker, now=worker.progress_at + 1)[0] == 200


def test_a_group_that_rebalances_over_and_over_fails_liveness(
    stack: StackInfo, topic_names: Any
) -> None:
    """Issue 17's storm stall: every rebalance completes, but another follows at once and
    no batch is ever processed. Each poll that brings a rebalance is no progress; an idle
    worker in a settled group stays live however long it waits for data."""
    s = test_settings(stack, topic_names, worker_stall_seconds=60)
    broker = MemoryBroker()
    worker = memory_worker(s, broker)
    worker._rebalanced = False
    worker.source.poll(0, 1)  # joins: a rebalance in this poll
    worker.turned(0)
    start = worker.progress_at

    def poll() -> None:
        worker._rebalanced = False
        worker.source.poll(0, 1)
        worker.turned(0)

    for _ in range(3):  # before each of the worker's polls a member joins or leaves
        other = broker.source([s.events_topic], s.group_id)
        other.poll(0, 1)
        poll()  # gives partitions to the newcomer
        other.close()
        poll()  # takes them back
    assert worker.progress_at == start  # no batch, never settled
    assert health(worker, now=start + 61)[1]["status"] == "no_progress"
    poll()  # the group settles: an empty poll, no rebalance
    assert worker.progress_at > start
    assert health(worker, now=worker.progress_at + 59)[0] == 200


def test_port_zero_serves_nothing(stack: StackInfo, topic_names: Any) -> None:
    s = test_settings(stack, topic_names)
    worker = memory_worker(s, MemoryBroker())
    try:
        assert start_server(worker, s) is None
    finally:
        worker.source.close()
        worker.sink.close()
