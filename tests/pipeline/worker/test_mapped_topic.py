"""A worker on a topic in its own field names, through the mapping, on the real stack."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import KafkaProducer

from pipeline.contracts.alerts import Alert
from pipeline.local.stack import StackInfo
from pipeline.worker.wiring import create_topics, open_worker
from tests.pipeline.kafka.helpers import read_all, test_settings

START = datetime(2026, 11, 2, tzinfo=UTC)


def payments(accounts: int, per_account: int, fraud_at: int) -> list[dict[str, Any]]:
    """Card payments as a team's topic has them: its own names, ISO times, a merchant."""
    out = []
    for step in range(per_account):
        for a in range(accounts):
            amount = 20.0 + 5.0 * ((step * 7 + a * 3) % 11) / 10
            if step == fraud_at:
                amount = 2_400.0  # a stolen card's first purchase
            out.append({
                "account_id": f"acct-{a}",
                "event_time": (START + timedelta(minutes=10 * step)).isoformat(),
                "amount": amount,
                "merchant": f"m-{(a + step) % 5}" if step != fraud_at else "m-shady",
            })  # fmt: skip
    return out


def test_a_mapped_topic_is_scored_end_to_end_with_meta_in_alerts(
    stack: StackInfo, topic_names: Any
) -> None:
    s = test_settings(
        stack, topic_names, event_stream_field="account_id", event_ts_field="event_time",
        event_ts_format="iso8601", event_features="amount", event_meta_fields="merchant",
        range_channel=False, topic_partitions=1,
    )  # fmt: skip
    create_topics(s)
    records = payments(accounts=6, per_account=120, fraud_at=100)
    broken = [
        {k: v for k, v in records[0].items() if k != "amount"},  # no feature field
        records[1] | {"event_time": 1763719200},  # not ISO 8601
    ]
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap_servers, acks="all")
    for record in records + broken:
        # The team keys its topic by merchant, not by account: the mapping does not care
        # (one partition keeps each account's payments in order).
        producer.send(s.events_topic, key=record.get("merchant", "x").encode(),
                      value=json.dumps(record).encode())  # fmt: skip
    producer.flush()
    producer.close()

    worker = open_worker(s)
    stats = worker.run(max_records=len(records) + len(broken), idle_exit_s=20)

    assert stats.applied == len(records)
    assert stats.deadletters == {"missing_field": 1, "bad_timestamp": 1}
    assert worker.store.count() == 6
    alerts = [Alert.from_json(r.value) for r in read_all(s.bootstrap_servers, s.alerts_topic)]
    fraud = [a for a in alerts if a.meta == {"merchant": "m-shady"}]
    assert {a.stream for a in fraud} == {f"acct-{a}" for a in range(6)}
    assert all(set(a.values) == {"amount"} and a.values["amount"] == 2_400.0 for a in fraud)
    dead = read_all(s.bootstrap_servers, s.deadletter_topic, expect=2)
    details = {dict(d.headers)["vigil.detail"].decode() for d in dead}
    assert "no 'amount' field (a mapped feature)" in details
    assert any("'event_time' must be an ISO 8601 string" in d for d in details)
