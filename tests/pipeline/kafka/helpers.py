"""Settings for tests, producing and reading back topics on the session's real broker, and a
worker on the in-memory Kafka double."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.contracts.events import encode_event
from pipeline.kafka.memory import MemoryBroker
from pipeline.local.stack import StackInfo
from pipeline.settings import Settings
from pipeline.settings_loader import load_settings
from pipeline.worker.loop import Worker
from pipeline.worker.wiring import build_worker


def test_settings(stack: StackInfo, topic_names: Any, **overrides: Any) -> Settings:
    """Settings on the session stack with this test's own topics, group and Redis prefix."""
    run = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "bootstrap_servers": stack.bootstrap_servers,
        "redis_url": stack.redis_url,
        "events_topic": topic_names("events"),
        "alerts_topic": topic_names("alerts"),
        "deadletter_topic": topic_names("deadletter"),
        "changelog_topic": topic_names("changelog"),
        "group_id": f"g-{run}",
        "redis_prefix": f"t-{run}",
        "topic_partitions": 4,
        "poll_timeout_ms": 100,
    }
    values.update(overrides)
    return load_settings(None, **values)


test_settings.__test__ = False  # type: ignore[attr-defined]


def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    n = 0
    for key, value in records:
        producer.send(topic, key=key, value=value)
        n += 1
    producer.flush()
    producer.close()
    return n


def read_all(
    bootstrap: str, topic: str, expect: int | None = None, idle_s: float = 3.0
) -> list[Any]:
    """Every record of a topic (from the start), waiting until `expect` or idle.

    Partitions are assigned directly (no group join), so reading back is quick.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    partitions = None
    for _ in range(50):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            break
        time.sleep(0.1)
    assert partitions, f"topic {topic} has no partitions"
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    out: list[Any] = []
    last = time.monotonic()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for records in batch.values():
                out.extend(records)
                last = time.monotonic()
            if expect is not None and len(out) >= expect:
                break
            if out and time.monotonic() - last > idle_s:
                break
            if not out and expect == 0 and time.monotonic() - last > idle_s:
                break
    finally:
        consumer.close()
    return out


def sensor_events(
    n_streams: int, per_stream: int, seed: int = 0, spike_at: int | None = 80
) -> list[tuple[bytes, bytes]]:
    """Round-robin events of noisy daily cycles; each stream spikes once at `spike_at`."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(10, 100, n_streams)
    out = []
    t0 = 1_763_700_000_000
    for step in range(per_stream):
        for s in range(n_streams):
            value = base[s] * (1 + 0.2 * math.sin(step / 24 * 2 * math.pi)) + rng.normal(0, 0.5)
            if spike_at is not None and step == spike_at:
                value += base[s] * 5
            stream = f"s-{s:04d}"
            out.append((stream.encode(), encode_event(stream, t0 + step * 60_000, round(value, 4))))
    return out


def memory_worker(settings: Settings, broker: MemoryBroker) -> Worker:
    """A worker on the in-memory Kafka double, with the real Redis and model of `settings`.

    For tests of worker logic that is not about Kafka; the events and changelog topics are created
    with `settings.topic_partitions` partitions if they do not exist yet.
    """
    broker.create_topic(settings.events_topic, settings.topic_partitions)
    if settings.changelog_topic:
        broker.create_topic(settings.changelog_topic, settings.topic_partitions)
    source = broker.source([settings.events_topic], settings.group_id)
    return build_worker(settings, source, broker.sink())
