"""The same behaviour tests over both Kafka backends (kafka-python and confluent-kafka).

Everything runs against the session's real broker and Redis: the worker must not be able
to tell which client library it was given.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from pipeline.contracts.alerts import Alert
from pipeline.contracts.events import encode_event
from pipeline.kafka.backends import make_sink, make_source
from pipeline.kafka.base import EventSource, Record
from pipeline.kafka.confluent import ConfluentSink, ConfluentSource
from pipeline.kafka.kafka_python import KafkaPythonSink, KafkaPythonSource
from pipeline.local.stack import StackInfo
from pipeline.models.serving import build_detector
from pipeline.settings import Settings
from pipeline.settings_loader import load_settings
from pipeline.state.redis import open_store
from pipeline.worker.loop import Worker
from pipeline.worker.wiring import assemble_worker, create_topics
from tests.pipeline.kafka.helpers import produce, read_all, sensor_events, test_settings

BACKENDS = ["kafka-python", "confluent"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _poll_until(source: EventSource, count: int, timeout_polls: int = 300) -> list[Record]:
    """Poll until `count` records arrived (group join included), or fail."""
    out: list[Record] = []
    for _ in range(timeout_polls):
        out.extend(source.poll(100, 500).records())
        if len(out) >= count:
            return out
    raise AssertionError(f"got {len(out)} of {count} records")


def test_factories_pick_the_backend_named_in_settings(
    stack: StackInfo, topic_names: Any, backend: str
) -> None:
    s = test_settings(stack, topic_names, kafka_backend=backend)
    source, sink = make_source(s, [s.events_topic]), make_sink(s)
    try:
        confluent = backend == "confluent"
        assert isinstance(source, ConfluentSource if confluent else KafkaPythonSource)
        assert isinstance(sink, ConfluentSink if confluent else KafkaPythonSink)
    finally:
        source.close()
        sink.close()


def test_unknown_backend_is_a_one_line_settings_error() -> None:
    from pipeline.settings import SettingsError

    with pytest.raises(SettingsError, match="kafka_backend"):
        load_settings(None, kafka_backend="librdkafka")


def test_consume_commit_and_resume_from_the_committed_offset(
    stack: StackInfo, topic_names: Any, backend: str
) -> None:
    s = test_settings(stack, topic_names, kafka_backend=backend, topic_partitions=2)
    create_topics(s)
    sent = [(f"k{i % 7}".encode(), f"v{i}".encode()) for i in range(200)]
    produce(s.bootstrap_servers, s.events_topic, sent)

    first = make_source(s, [s.events_topic])
    records = _poll_until(first, 200)
    assert sorted(r.value or b"" for r in records) == sorted(v for _, v in sent)
    assert all(r.topic == s.events_topic and r.timestamp > 0 for r in records)
    assert first.assignment() == {(s.events_topic, 0), (s.events_topic, 1)}
    # Commit only the first half of each partition, as a worker that stopped mid-way.
    by_partition: dict[int, list[Record]] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r)
    committed = {(s.events_topic, p): len(rs) // 2 for p, rs in by_partition.items()}
    first.commit(committed)
    first.close()

    second = make_source(s, [s.events_topic])
    try:
        expected = {
            (r.partition, r.offset)
            for r in records
            if r.offset >= len(by_partition[r.partition]) // 2
        }
        rest = _poll_until(second, len(expected))
        assert {(r.partition, r.offset) for r in rest} == expected
        assert not second.poll(500, 500)  # nothing beyond the end, nothing twice
    finally:
        second.close()


def test_produce_with_headers_round_trips(stack: StackInfo, topic_names: Any, backend: str) -> None:
    s = test_settings(stack, topic_names, kafka_backend=backend, topic_partitions=1)
    create_topics(s)
    sink = make_sink(s)
    headers = [("vigil.reason", b"malformed_json"), ("bin", bytes(range(256)))]
    sink.send(s.events_topic, b"key-1", b"value-1", headers)
    sink.send(s.events_topic, None, b"no key")
    sink.flush()
    sink.close()

    raw = read_all(s.bootstrap_servers, s.events_topic, expect=2)
    assert [(r.key, r.value) for r in raw] == [(b"key-1", b"value-1"), (None, b"no key")]
    assert list(raw[0].headers) == headers
    assert not raw[1].headers

    source = make_source(s, [s.events_topic])
    try:
        records = _poll_until(source, 2)
    finally:
        source.close()
    assert [(r.key, r.value, r.headers) for r in records] == [
        (b"key-1", b"value-1", headers),
        (None, b"no key", []),
    ]


def _run_worker(s: Settings, total: int) -> tuple[np.ndarray, set[str], Worker]:
    detector = build_detector(s)
    worker = assemble_worker(
        s, make_source(s, [s.events_topic]), make_sink(s), open_store(s), detector
    )
    worker.run(max_records=total, idle_exit_s=20)
    streams = [f"s-{i:04d}" for i in range(40)]
    states, known = detector.layout.decode(open_store(s).load(streams))
    assert known.all()
    alerts = read_all(s.bootstrap_servers, s.alerts_topic, expect=worker.stats.alerts)
    return states, {Alert.from_json(r.value).id for r in alerts}, worker


def test_worker_end_to_end_gives_the_same_result_on_both_backends(
    stack: StackInfo, topic_names: Any
) -> None:
    events_topic = topic_names("events")
    good = sensor_events(40, 70, seed=3, spike_at=60)
    bad = [(b"s-0000", b"{not json"), (b"x", encode_event("y", 1_763_700_000_000, 1.0))]
    results = []
    for i, backend in enumerate(BACKENDS):
        s = test_settings(stack, topic_names, kafka_backend=backend, events_topic=events_topic)
        create_topics(s)
        if i == 0:
            produce(s.bootstrap_servers, s.events_topic, good + bad)
        results.append(_run_worker(s, len(good) + len(bad)))
        dead = read_all(s.bootstrap_servers, s.deadletter_topic, expect=2)
        assert sorted(dict(r.headers)["vigil.reason"] for r in dead) == [
            b"key_mismatch",
            b"malformed_json",
        ]

    (states_a, alerts_a, worker_a), (states_b, alerts_b, worker_b) = results
    for worker in (worker_a, worker_b):
        assert worker.stats.records == len(good) + len(bad)
        assert worker.stats.applied == len(good)
        assert sum(worker.stats.deadletters.values()) == 2
    assert int(states_a["count"].sum()) == len(good)
    for name in ("partition", "offset", "count", "last_ts", "flags", "episode_start"):
        assert (states_a[name] == states_b[name]).all(), name
    np.testing.assert_allclose(states_a["hidden"], states_b["hidden"], rtol=1e-4, atol=1e-4)
    assert alerts_a == alerts_b
    assert len(alerts_a) >= 20  # the spikes are there to be found


@pytest.mark.parametrize("backend", ["kafka-python", "confluent"])
def test_lag_is_reported_from_what_the_client_knows(
    stack: StackInfo, topic_names: Any, backend: str
) -> None:
    """Lag = end offset - next position, never negative; a partition the client knows
    nothing about is left out rather than guessed."""
    s = test_settings(stack, topic_names, topic_partitions=1, kafka_backend=backend)
    create_topics(s)
    produce(s.bootstrap_servers, s.events_topic, sensor_events(1, 20, spike_at=None))
    source = make_source(s, [s.events_topic])
    try:
        seen: list[Any] = []
        deadline = time.monotonic() + 30
        while len(seen) < 5 and time.monotonic() < deadline:
            seen += source.poll(200, 5).records()
        lag = source.lag({(s.events_topic, 0): 5, ("no-such-topic", 0): 0})
        assert ("no-such-topic", 0) not in lag
        assert all(v >= 0 for v in lag.values())
    finally:
        source.close()
