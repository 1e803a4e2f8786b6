"""The worker loop: the real path end to end, and its logic on the in-memory Kafka double.

Tests of what the worker does with records (decoding, rounds, alerts, dead letters, the
API's view, the checkpoint order) run on `pipeline.kafka.memory` with the real Redis;
the real broker serves the end-to-end test and the one about the broker's record limit.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pytest

from pipeline.contracts.alerts import Alert
from pipeline.contracts.events import encode_event
from pipeline.kafka.memory import MemoryBroker
from pipeline.local.stack import StackInfo
from pipeline.worker.wiring import create_topics, open_worker
from tests.pipeline.kafka.helpers import (
    memory_worker,
    produce,
    read_all,
    sensor_events,
    test_settings,
)


def run_worker(settings: Any, expect: int) -> Any:
    worker = open_worker(settings)
    stats = worker.run(max_records=expect, idle_exit_s=20)
    return worker, stats


def run_memory(settings: Any, records: list[tuple[bytes, bytes]]) -> tuple[Any, MemoryBroker]:
    """Produce ``records`` to a fresh in-memory broker and run a worker until idle."""
    broker = MemoryBroker()
    worker = memory_worker(settings, broker)
    broker.produce_all(settings.events_topic, records)
    stats = worker.run(idle_exit_s=0)
    assert stats.records == len(records)
    return worker, broker


def drain(worker: Any) -> None:
    """Poll and process until a poll comes back empty, then checkpoint; stay in the group."""
    while len(batch := worker.source.poll(0, worker.config.max_poll_records)):
        worker.process_with_retry(batch)
    worker.save_checkpoint()


def states_of(worker: Any, streams: list[str]) -> np.ndarray:
    states, known = worker.detector.layout.decode(worker.store.load(streams))
    assert known.all()
    return states


def test_events_become_states_and_alerts(stack: StackInfo, topic_names: Any) -> None:
    s = test_settings(stack, topic_names)
    create_topics(s)
    events = sensor_events(n_streams=20, per_stream=120, spike_at=90)
    produce(s.bootstrap_servers, s.events_topic, events)

    worker, stats = run_worker(s, len(events))

    assert stats.records == len(events)
    assert stats.applied == len(events)
    assert worker.store.count() == 20
    alerts = [Alert.from_json(r.value) for r in read_all(s.bootstrap_servers, s.alerts_topic)]
    spiked = {a.stream for a in alerts if a.offset >= 0 and a.values["value"] > 0}
    # Every stream's spike (5x its level at step 90) is caught, and alerts carry the contract.
    assert len(spiked) >= 18
    alert = alerts[0]
    assert 0.0 <= alert.score <= 1.0
    assert alert.model_version.startswith("generic-gru-h64-")
    assert alert.detector.startswith("vigil-rnn")
    assert set(alert.expected) == {"value"}
    raw = json.loads(read_all(s.bootstrap_servers, s.alerts_topic)[0].value)
    assert {"id", "stream", "ts", "score", "value", "expected", "model_version", "detector"} <= set(
        raw
    )


def test_warmup_never_alerts(stack: StackInfo, topic_names: Any) -> None:
    s = test_settings(stack, topic_names, warmup_events=48)
    events = sensor_events(n_streams=10, per_stream=40, spike_at=30)
    worker, _ = run_memory(s, events)
    stats = worker.stats
    assert stats.applied == len(events)
    assert stats.alerts == 0


def test_replaying_the_topic_applies_nothing_twice(stack: StackInfo, topic_names: Any) -> None:
    s = test_settings(stack, topic_names)
    events = sensor_events(n_streams=10, per_stream=100)
    first, broker = run_memory(s, events)
    streams = [f"s-{i:04d}" for i in range(10)]
    before = states_of(first, streams)
    n_alerts = len(broker.records(s.alerts_topic))

    # A new group re-reads the whole topic from the start: every event is a replay.
    again = memory_worker(s.replace(group_id=s.group_id + "-again"), broker)
    stats = again.run(idle_exit_s=0)

    assert stats.replays_skipped == len(events)
    assert stats.applied == 0
    after = states_of(again, streams)
    assert before.tobytes() == after.tobytes()
    assert len(broker.records(s.alerts_topic)) == n_alerts
    assert (after["count"] == 100).all()


BAD_RECORDS: list[tuple[str, bytes | None, bytes]] = [
    ("malformed_json", b"k", b"{not json"),
    ("not_an_object", b"k", b"[1, 2]"),
    ("missing_field", b"k", b'{"stream": "k", "value": 1}'),
    ("wrong_type", b"k", b'{"stream": "k", "ts": 1763700000, "value": "12"}'),
    ("non_finite", b"k", b'{"stream": "k", "ts": 1763700000, "value": NaN}'),
    ("absurd_magnitude", b"k", b'{"stream": "k", "ts": 1763700000, "value": 1e300}'),
    ("bad_timestamp", b"k", b'{"stream": "k", "ts": "yesterday", "value": 1}'),
    (
        "oversized",
        b"k",
        b'{"stream": "k", "ts": 1763700000, "value": 1, "pad": "' + b"x" * 70_000 + b'"}',
    ),
    ("key_mismatch", b"other", b'{"stream": "k", "ts": 1763700000, "value": 1}'),
    (
        "too_many_features",
        b"k",
        b'{"stream": "k", "ts": 1763700000, "values": {"a":1,"b":2,"c":3,"d":4,"e":5}}',
    ),
]


def test_bad_records_go_to_the_dead_letter_topic(stack: StackInfo, topic_names: Any) -> None:
    s = test_settings(stack, topic_names, topic_partitions=1)
    good = [(b"ok", encode_event("ok", 1_763_700_000 + i * 60, float(i % 7))) for i in range(5)]
    state_based = [
        ("out_of_order", b"ok", encode_event("ok", 1_763_700_000, 1.0)),
        ("duplicate_ts", b"ok", encode_event("ok", 1_763_700_000 + 4 * 60, 1.0)),
        ("feature_mismatch", b"ok", encode_event("ok", 1_763_700_000 + 600, {"x": 1.0})),
    ]
    records = good + [(k, v) for _, k, v in BAD_RECORDS + state_based]
    worker, broker = run_memory(s, records)
    stats = worker.stats

    assert stats.applied == len(good)
    dead = broker.records(s.deadletter_topic)
    by_reason = {dict(r.headers)["vigil.reason"].decode(): r for r in dead}
    expected = {reason for reason, _, _ in BAD_RECORDS + state_based}
    assert set(by_reason) == expected
    for reason, key, value in BAD_RECORDS + state_based:
        record = by_reason[reason]
        headers = dict(record.headers)
        assert record.value == value, reason  # the original bytes, untouched
        assert record.key == key
        assert headers["vigil.source.topic"].decode() == s.events_topic
        assert int(headers["vigil.source.offset"]) >= 0
        assert headers["vigil.detail"]
    assert sum(stats.deadletters.values()) == len(expected)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_multivariate_streams_name_the_feature_that_broke(
    stack: StackInfo, topic_names: Any, kind: str
) -> None:
    s = test_settings(stack, topic_names, model_kind=kind)
    rng = np.random.default_rng(3)
    records = []
    for step in range(120):
        for p in range(5):
            temp = 70 + 2 * np.sin(step / 12) + rng.normal(0, 0.2)
            vib = 0.03 + rng.normal(0, 0.002)
            if step == 100:
                vib = 0.5  # the vibration sensor breaks; temperature is normal
            stream = f"pump-{p}"
            records.append(
                (stream.encode(), encode_event(stream, 1_763_700_000_000 + step * 60_000,
                                               {"temp": temp, "vibration": vib}, site="plant-1"))
            )  # fmt: skip
    _, broker = run_memory(s, records)
    alerts = [Alert.from_json(r.value) for r in broker.records(s.alerts_topic)]
    at_break = [a for a in alerts if a.ts_ms == 1_763_700_000_000 + 100 * 60_000]
    assert len(at_break) == 5
    assert all(a.top_feature == "vibration" for a in at_break)
    assert all(a.meta == {"site": "plant-1"} for a in at_break)
    assert all(a.detector == f"vigil-rnn/{kind}" for a in at_break)


def test_worker_keeps_history_scores_and_alerts_for_the_api(
    stack: StackInfo, topic_names: Any, redis_client: Any
) -> None:
    from pipeline.contracts.history import parse_history
    from pipeline.state.base import alerts_key, history_key, scores_key

    s = test_settings(stack, topic_names, history_length=50)
    events = sensor_events(n_streams=5, per_stream=100, spike_at=90)
    worker, _ = run_memory(s, events)
    stats = worker.stats

    entries = parse_history(redis_client.get(history_key(s.redis_prefix, "s-0000")))
    assert len(entries) == 50  # the last history_length points
    sent = [json.loads(v) for k, v in events if k == b"s-0000"][-50:]
    assert [e.ts_ms for e in entries] == [body["ts"] for body in sent]
    assert [e.values for e in entries] == [
        {"value": pytest.approx(body["value"], rel=1e-6)} for body in sent
    ]
    assert all(e.expected.keys() == {"value"} for e in entries)
    assert entries[-1].ts_ms == 1_763_700_000_000 + 99 * 60_000  # newest last
    assert [e.ts_ms for e in entries] == sorted(e.ts_ms for e in entries)
    assert any(e.alert for e in entries)
    ranked = redis_client.zrevrange(scores_key(s.redis_prefix), 0, -1)
    assert sorted(ranked) == [f"s-{i:04d}".encode() for i in range(5)]
    kept = redis_client.xrange(alerts_key(s.redis_prefix))
    assert len(kept) == stats.alerts
    assert Alert.from_json(kept[0][1][b"alert"]).stream.startswith("s-")


def test_worker_publishes_its_counters(
    stack: StackInfo, topic_names: Any, redis_client: Any
) -> None:
    from pipeline.state.base import metrics_key

    s = test_settings(stack, topic_names, topic_partitions=1)
    records = [*sensor_events(n_streams=3, per_stream=60, spike_at=55), (b"x", b"{oops")]
    worker, _ = run_memory(s, records)
    stats = worker.stats
    counters = {
        k.decode(): v.decode() for k, v in redis_client.hgetall(metrics_key(s.redis_prefix)).items()
    }
    assert float(counters["records"]) == len(records)
    assert float(counters["applied"]) == len(records) - 1
    assert float(counters["deadletter:malformed_json"]) == 1
    assert float(counters["alerts"]) == stats.alerts
    assert float(counters["batches"]) == stats.batches
    assert float(counters[f"batch_le_{10.0}"]) == stats.batches  # the histogram's last bucket
    assert counters["model_version"].startswith("generic-gru-h64-")


def test_a_record_near_the_broker_limit_is_dead_lettered_cut_not_fatal(
    stack: StackInfo, topic_names: Any
) -> None:
    s = test_settings(stack, topic_names, topic_partitions=1)
    create_topics(s)
    huge = b'{"stream": "k", "ts": 1763700000, "value": 1, "pad": "' + b"x" * 999_000 + b'"}'
    records = [(b"k", huge), *sensor_events(n_streams=1, per_stream=3, spike_at=None)]
    produce(s.bootstrap_servers, s.events_topic, records)
    _, stats = run_worker(s, len(records))
    assert stats.applied == 3
    dead = read_all(s.bootstrap_servers, s.deadletter_topic, expect=1)
    headers = dict(dead[0].headers)
    assert headers["vigil.reason"] == b"oversized"
    assert headers["vigil.original.value_bytes"] == str(len(huge)).encode()
    assert headers["vigil.original.value_sha256"] == hashlib.sha256(huge).hexdigest().encode()
    assert headers["vigil.original.key_bytes"] == b"1"
    assert dead[0].key == b"k"
    assert huge.startswith(dead[0].value)
    assert len(dead[0].value) + sum(len(k) + len(v) for k, v in dead[0].headers) < 1_000_000


def test_states_and_offsets_wait_for_the_checkpoint(stack: StackInfo, topic_names: Any) -> None:
    """Batches of one interval apply to states held in memory: Redis and the committed
    offsets change only when the checkpoint saves (5) and then commits (6)."""
    s = test_settings(stack, topic_names, commit_interval_ms=60_000, max_poll_records=7)
    events = sensor_events(n_streams=3, per_stream=20, spike_at=None)
    broker = MemoryBroker()
    worker = memory_worker(s, broker)
    broker.produce_all(s.events_topic, events)
    streams = ["s-0000", "s-0001", "s-0002"]
    partitions = [(s.events_topic, p) for p in range(s.topic_partitions)]
    while worker.stats.records < len(events):
        worker.process_with_retry(worker.source.poll(0, s.max_poll_records))
    assert worker.stats.batches > 1
    assert worker.store.load(streams) == [None, None, None]  # nothing saved yet
    assert all(broker.committed(s.group_id, tp) is None for tp in partitions)

    worker.save_checkpoint()
    saved, known = worker.detector.layout.decode(worker.store.load(streams))
    assert known.all() and (saved["count"] == 20).all()
    committed = sum(broker.committed(s.group_id, tp) or 0 for tp in partitions)
    assert committed == len(events)  # next offsets over all partitions
    # The states stay held, clean: the next batches of these streams read nothing.
    assert len(worker.checkpoint) == 3 and not worker.checkpoint.dirty[:3].any()


def test_a_rebalance_saves_and_commits_before_partitions_move(
    stack: StackInfo, topic_names: Any
) -> None:
    """A second worker joins mid-stream: the first saves and commits inside its revoke,
    the second resumes from the committed offsets, and every event is applied once."""
    s = test_settings(stack, topic_names, commit_interval_ms=60_000, max_poll_records=25)
    events = sensor_events(n_streams=8, per_stream=30, spike_at=None)
    broker = MemoryBroker()
    first = memory_worker(s, broker)
    broker.produce_all(s.events_topic, events)
    for _ in range(3):
        first.process_with_retry(first.source.poll(0, s.max_poll_records))
    assert len(first.checkpoint) > 0  # applied, held in memory, not committed
    second = memory_worker(s, broker)
    drain(second)  # owns nothing until the first lets go
    drain(first)  # revoke inside poll: save + commit, then it reads on with half the partitions
    drain(second)
    assert first.stats.applied + second.stats.applied == len(events)
    assert first.stats.replays_skipped + second.stats.replays_skipped == 0
    states = states_of(second, [f"s-{i:04d}" for i in range(8)])
    assert (states["count"] == 30).all()
