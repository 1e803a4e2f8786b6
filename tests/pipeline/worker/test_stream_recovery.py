"""Streams can always recover (real broker and Redis): an event far in the future is
dead-lettered instead of freezing its stream, and a reset (CLI or API) brings back a
stream frozen by its first event's feature set."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from pipeline.api.app import create_app
from pipeline.contracts.deadletter import FEATURE_MISMATCH, FUTURE_TIMESTAMP
from pipeline.kafka.memory import MemoryBroker
from pipeline.local.stack import StackInfo
from pipeline.settings import Settings
from pipeline.state.base import state_key
from pipeline.state.redis import connect_redis
from pipeline.state.reset import reset_stream
from pipeline.worker.batch import feature_tag
from pipeline.worker.checkpoint import Checkpoint
from pipeline.worker.resets import apply_resets
from pipeline.worker.wiring import create_topics, open_worker
from tests.pipeline.kafka.helpers import memory_worker, produce, read_all, test_settings
from tests.reliability.harness import LAYOUT, WorkerThread, states, wait_until, worker_env

T0 = 1_763_700_000_000
MINUTE = 60_000


def event(stream: str, i: int, **body: Any) -> tuple[bytes, bytes]:
    values = body or {"value": 10.0 + (i % 5)}
    return stream.encode(), json.dumps({"ts": T0 + i * MINUTE, **values}).encode()


def run(s: Settings, n: int) -> Any:
    stats = open_worker(s).run(max_records=n, idle_exit_s=20)
    assert stats.records == n
    return stats


def reasons(s: Settings, expect: int) -> list[tuple[int, str]]:
    dead = read_all(s.bootstrap_servers, s.deadletter_topic, expect=expect)
    return sorted((int(dict(r.headers)["vigil.source.offset"]), dict(r.headers)["vigil.reason"]
                   .decode()) for r in dead)  # fmt: skip


def test_an_event_in_2199_is_dead_lettered_and_the_stream_keeps_scoring(
    stack: StackInfo, topic_names: Any
) -> None:
    s = test_settings(stack, topic_names, topic_partitions=1)
    records = [event("f", i) for i in range(60)]
    records.append((b"f", b'{"ts": "2199-12-31T00:00:00Z", "value": 11}'))
    records += [event("f", i) for i in range(60, 80)]
    broker = MemoryBroker()  # the in-memory Kafka double: this is about the worker's check
    worker = memory_worker(s, broker)
    broker.produce_all(s.events_topic, records)
    stats = worker.run(idle_exit_s=0)
    assert (stats.records, stats.applied) == (len(records), 80)
    (dead,) = broker.records(s.deadletter_topic)
    detail = dict(dead.headers)
    assert (int(detail["vigil.source.offset"]), detail["vigil.reason"].decode()) == (
        60,
        FUTURE_TIMESTAMP,
    )
    assert detail["vigil.detail"] == b"ts is over 86400 s ahead of the worker's clock"
    st, _ = states(s, ["f"])
    assert int(st["count"][0]) == 80 and int(st["last_ts"][0]) == T0 + 79 * MINUTE


def _frozen_stream(s: Settings, stream: str) -> None:
    """A stream whose first event had the wrong feature set: everything after is refused."""
    first = [event(stream, 0, values={"a": 1.0, "b": 2.0})]
    rest = [event(stream, i) for i in range(1, 6)]
    produce(s.bootstrap_servers, s.events_topic, first + rest)
    stats = run(s, 6)
    assert stats.applied == 1
    assert stats.deadletters == {FEATURE_MISMATCH: 5}


def _comes_back(s: Settings, stream: str, dead_before: int) -> None:
    """After the reset, new single-value events are applied and start the stream afresh."""
    produce(s.bootstrap_servers, s.events_topic, [event(stream, i) for i in range(6, 16)])
    stats = run(s, 10)
    assert stats.applied == 10 and not stats.deadletters
    st, known = states(s, [stream])
    assert known.all() and int(st["count"][0]) == 10
    assert int(st["feature_tag"][0]) == feature_tag(("value",))
    assert len(read_all(s.bootstrap_servers, s.deadletter_topic, expect=dead_before)) == 5


def test_vigil_streams_reset_brings_back_a_frozen_stream(
    stack: StackInfo, topic_names: Any
) -> None:
    s = test_settings(stack, topic_names, topic_partitions=1)
    create_topics(s)
    _frozen_stream(s, "r")
    cli = [sys.executable, "-m", "pipeline.cli.main", "streams", "reset"]
    done = subprocess.run([*cli, "r"], env=worker_env(s), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "stream 'r' reset" in done.stdout
    assert "stream reset: stream='r' by=cli:" in done.stderr  # the audit line
    missing = subprocess.run([*cli, "nope"], env=worker_env(s), capture_output=True, text=True)
    assert missing.returncode == 2
    assert (
        missing.stderr.strip()
        == f"vigil: no state stored for stream 'nope' (prefix {s.redis_prefix})"
    )
    _comes_back(s, "r", 5)


def test_the_api_resets_a_stream_with_the_admin_token_only(
    stack: StackInfo, topic_names: Any
) -> None:
    s = test_settings(stack, topic_names, topic_partitions=1, api_token="admin",
                      api_viewer_token="viewer")  # fmt: skip
    create_topics(s)
    _frozen_stream(s, "x/y")
    with TestClient(create_app(s)) as http:
        viewer = http.post("/streams/x/y/reset", headers={"Authorization": "Bearer viewer"})
        assert viewer.status_code in (401, 403)
        admin = {"Authorization": "Bearer admin"}
        assert http.post("/streams/unknown/reset", headers=admin).status_code == 404
        res = http.post("/streams/x/y/reset", headers=admin)
        assert res.status_code == 200, res.text
        assert res.json()["last_offset"] == 0  # the one event it applied
        detail = http.get("/streams/x/y", headers={"Authorization": "Bearer viewer"})
        assert detail.json()["status"] == "warming" and detail.json()["count"] == 0
    stored = connect_redis(s.redis_address()).get(state_key(s.redis_prefix, "x/y"))
    assert stored is not None and len(stored) == 16  # the reset marker: header only
    _comes_back(s, "x/y", 5)


def test_a_running_worker_takes_a_reset_of_a_stream_it_holds(
    stack: StackInfo, topic_names: Any
) -> None:
    """No restart between the reset and the next events: the worker must not judge them
    against the frozen state it may still hold."""
    s = test_settings(stack, topic_names, topic_partitions=1, commit_interval_ms=100)
    create_topics(s)
    running = WorkerThread(open_worker(s))
    stats = running.worker.stats
    try:
        frozen = [event("h", 0, values={"a": 1.0, "b": 2.0})] + [event("h", i) for i in range(1, 6)]
        produce(s.bootstrap_servers, s.events_topic, frozen)
        wait_until(lambda: stats.deadletters[FEATURE_MISMATCH] == 5, 60, "the frozen stream",
                   running.problem)  # fmt: skip
        # The reset needs a stored state to replace: wait for the worker's checkpoint.
        client = connect_redis(s.redis_address())
        wait_until(lambda: client.exists(state_key(s.redis_prefix, "h")) == 1, 60,
                   "the frozen stream's saved state", running.problem)  # fmt: skip
        assert reset_stream(client, s.redis_prefix, "h", "test")
        produce(s.bootstrap_servers, s.events_topic, [event("h", i) for i in range(6, 16)])
        wait_until(lambda: stats.applied == 11, 60, "the events after the reset", running.problem)
    finally:
        running.stop()
    assert stats.deadletters == {FEATURE_MISMATCH: 5}
    st, _ = states(s, ["h"])
    assert int(st["count"][0]) == 10 and int(st["feature_tag"][0]) == feature_tag(("value",))


def test_a_reset_replaces_a_state_held_in_memory_keeping_its_offset() -> None:
    cp = Checkpoint(LAYOUT, history_length=0)
    held = LAYOUT.fresh(2)
    held["count"], held["partition"], held["offset"] = [5, 7], [0, 1], [41, 99]
    cp.insert(["a", "b"], held, np.array([0, 1]))
    cp.dirty[:2] = [True, False]
    assert apply_resets(cp, LAYOUT, ["b", "zzz", "b"]) == 1
    assert cp.states["count"][:2].tolist() == [5, 0]
    assert cp.states["offset"][:2].tolist() == [41, 99]  # replays stay skipped
    assert cp.states["partition"][:2].tolist() == [0, 1]
    assert cp.dirty[:2].tolist() == [True, False]
    assert np.array_equal(cp.states["hidden"][1], LAYOUT.fresh(1)["hidden"][0])
