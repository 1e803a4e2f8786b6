"""A stopped worker with records waiting shows rising lag on /metrics (real broker)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from kafka import KafkaProducer

from pipeline.api.app import create_app
from pipeline.local.stack import StackInfo
from pipeline.worker.wiring import create_topics
from tests.pipeline.api.conftest import module_settings, run_worker
from tests.pipeline.kafka.helpers import sensor_events


def group_lag(client: TestClient) -> tuple[int, int]:
    """(lag summed over partitions, whether it could be read)."""
    text = client.get("/metrics").text
    lags = re.findall(r"^vigil_consumer_group_lag\{[^}]*\} (\d+)$", text, flags=re.M)
    up = re.search(r"^vigil_consumer_group_lag_up (\d)$", text, flags=re.M)
    assert up is not None
    return sum(map(int, lags)), int(up.group(1))


def produce_one_by_one(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """One record per batch: the test broker (Tansu) answers ListOffsets with the last
    batch's base offset + 1, so batched writes would read as too little lag there."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", batch_size=0)
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def test_lag_rises_while_the_worker_is_stopped(stack: StackInfo) -> None:
    s = module_settings(stack)
    create_topics(s)
    events = sensor_events(5, 120, spike_at=None)
    first, later = events[:400], events[400:]
    with TestClient(create_app(s)) as client:
        produce_one_by_one(s.bootstrap_servers, s.events_topic, first)
        assert group_lag(client) == (400, 1)  # the group never committed: all waiting
        run_worker(s, len(first))  # consumes, commits, stops
        assert group_lag(client) == (0, 1)

        produce_one_by_one(s.bootstrap_servers, s.events_topic, later[:100])
        assert group_lag(client) == (100, 1)
        produce_one_by_one(s.bootstrap_servers, s.events_topic, later[100:])
        assert group_lag(client) == (len(later), 1)  # still stopped: lag keeps rising

        run_worker(s, len(later))
        assert group_lag(client) == (0, 1)


def test_an_unreachable_broker_gives_lag_up_0_not_a_failed_scrape(stack: StackInfo) -> None:
    s = module_settings(stack, bootstrap_servers="127.0.0.1:1")
    with TestClient(create_app(s)) as client:
        res = client.get("/metrics")
        assert res.status_code == 200
        assert group_lag(client) == (0, 0)
