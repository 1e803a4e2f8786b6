"""Alerts reach Alertmanager and a webhook beside the topic, and a dead sink blocks nothing."""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from pipeline.contracts.alerts import Alert
from pipeline.local.stack import StackInfo
from pipeline.sinks.sender import SinkSender
from pipeline.worker.health import WorkerCollector
from pipeline.worker.wiring import create_topics, open_worker
from tests.pipeline.kafka.helpers import produce, read_all, sensor_events, test_settings
from tests.pipeline.sinks.receivers import receiver


def _wait(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_firing_and_resolved_reach_alertmanager_and_a_flaky_webhook(
    stack: StackInfo, topic_names: Any
) -> None:
    with (
        receiver("/api/v2/alerts", alertmanager=True) as (am_url, am),
        receiver("/hook", fail_first=2) as (hook_url, hook),
    ):
        s = test_settings(stack, topic_names, alert_quiet_seconds=600, alertmanager_url=am_url,
                          webhook_url=f"{hook_url}/hook")  # fmt: skip
        create_topics(s)
        events = sensor_events(n_streams=2, per_stream=130, spike_at=90)
        produce(s.bootstrap_servers, s.events_topic, events)
        worker = open_worker(s)
        worker.run(max_records=len(events), idle_exit_s=20)  # closes the senders: drains

        kafka = [Alert.from_json(r.value) for r in read_all(s.bootstrap_servers, s.alerts_topic)]
        resolved = [a for a in kafka if a.state == "resolved"]
        assert resolved and any(a.state == "firing" for a in kafka)

        posted = [alert for body in am.bodies for alert in body]
        for done in resolved:
            assert done.episode is not None
            same = [p for p in posted if p["labels"]["episode"] == done.episode.id]
            firing = [p for p in same if "endsAt" not in p]
            ended = [p for p in same if "endsAt" in p]
            assert firing and len(ended) == 1
            assert firing[0]["labels"] == ended[0]["labels"]
            assert firing[0]["labels"]["stream"] == done.stream
            assert firing[0]["annotations"]["summary"].startswith(f"{done.stream}: value is")
            assert ended[0]["startsAt"] < ended[0]["endsAt"]

        scraped = generate_latest(_registry(worker)).decode()
        assert (
            f'vigil_worker_sink_alerts_total{{outcome="delivered",sink="webhook"}} {len(kafka)}.0'
            in scraped
        )
        assert 'vigil_worker_sink_alerts_total{outcome="failed",sink="alertmanager"} 0.0' in scraped

        # The webhook refused the first two attempts; retries delivered every alert once.
        assert hook.attempts == len(kafka) + 2
        assert sorted(b["id"] for b in hook.bodies) == sorted(a.id for a in kafka)
        assert all(
            h["Idempotency-Key"] == b["id"] for h, b in zip(hook.headers, hook.bodies, strict=True)
        )


def _registry(worker: Any) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(WorkerCollector(worker))
    return registry


class _Stuck:
    name = "stuck"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.seen: list[str] = []

    def deliver(self, alert: Alert) -> None:
        self.release.wait(10)
        self.seen.append(alert.id)

    def tick(self) -> None:
        return None


def test_a_stuck_sink_never_blocks_and_keeps_the_newest(make_alert: Any) -> None:
    sink = _Stuck()
    sender = SinkSender(sink, queue_size=3, retries=0)
    alerts = [make_alert(i) for i in range(10)]
    started = time.monotonic()
    sender.submit(alerts)
    assert time.monotonic() - started < 1.0  # generous: submit only appends
    _wait(lambda: sender.pending() <= 3)
    sink.release.set()
    sender.close(drain_s=5)
    # one alert was taken before the queue filled; of the rest only the newest three stay
    assert sink.seen[-3:] == [a.id for a in alerts[-3:]]
    assert sender.stats.dropped == 10 - len(sink.seen)


class _Failing:
    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    def deliver(self, alert: Alert) -> None:
        self.calls += 1
        raise ConnectionError("refused")

    def tick(self) -> None:
        return None


def test_a_dead_sink_gives_up_after_its_retries_and_silences_skip(make_alert: Any) -> None:
    sink = _Failing()
    sender = SinkSender(sink, retries=2, backoff_s=0.01, silenced=lambda s: s == "quiet")
    sender.submit([make_alert(1), make_alert(2, stream="quiet")])
    _wait(lambda: sender.stats.failed + sender.stats.silenced == 2)
    sender.close()
    assert (sender.stats.failed, sender.stats.silenced, sink.calls) == (1, 1, 3)
