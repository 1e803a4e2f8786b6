"""Wiring: build a worker's real Kafka client, Redis store and detector from settings."""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

import torch

from detectors.detector import RecurrentDetector
from pipeline.contracts.alerts import Alert
from pipeline.contracts.mapping import batch_decoder
from pipeline.kafka.backends import make_sink
from pipeline.kafka.backends import make_source as _backend_source
from pipeline.kafka.base import EventSource, RecordSink
from pipeline.kafka.topics import TopicError, ensure_topics
from pipeline.models.registry import ModelRegistry
from pipeline.models.serving import build_detector
from pipeline.settings import Settings
from pipeline.sinks.http_sinks import AlertmanagerSink, WebhookSink
from pipeline.sinks.sender import Sink, SinkSender
from pipeline.state.base import StateStore
from pipeline.state.labels import SilenceCache
from pipeline.state.redis import connect_redis, open_store, refuse_evicting
from pipeline.worker.config import LoopConfig
from pipeline.worker.loop import Worker
from pipeline.worker.model_watch import ModelWatcher
from pipeline.worker.resets import ResetWatcher
from pipeline.worker.restore import StateGuard


def topic_layout(settings: Settings) -> dict[str, int]:
    """The topics Vigil uses and their partition counts."""
    topics = {
        settings.events_topic: settings.topic_partitions,
        settings.alerts_topic: settings.topic_partitions,
        settings.deadletter_topic: 1,
    }
    if settings.changelog_topic:  # partition p holds the states of the events' partition p
        topics[settings.changelog_topic] = settings.topic_partitions
    return topics


def create_topics(settings: Settings, timeout_s: float = 15.0) -> None:
    """Create the missing topics; refuse a changelog with fewer partitions than the events
    topic (states of events partition p are written to changelog partition p)."""
    changelog, events = settings.changelog_topic, settings.events_topic
    counts = ensure_topics(
        settings.kafka_bootstrap(),
        topic_layout(settings),
        settings.kafka_security(),
        timeout_s,
        configs={changelog: {"cleanup.policy": "compact"}} if changelog else None,
    )
    if changelog and counts.get(changelog, 0) < counts.get(events, 0):
        raise TopicError(
            f"changelog topic {changelog} has {counts[changelog]} partitions and the events "
            f"topic {events} {counts[events]}: give the changelog as many"
        )


def make_source(settings: Settings, client_id: str = "vigil-worker") -> EventSource:
    """A consumer of the events topic in the worker's group, on the configured backend."""
    return _backend_source(settings, [settings.events_topic], client_id=client_id)


def open_senders(settings: Settings) -> list[SinkSender]:
    """A background sender per configured sink (none when no sink URL is set)."""
    sinks: list[Sink] = []
    timeout = settings.sink_timeout_s
    if settings.alertmanager_url:
        sinks.append(
            AlertmanagerSink(
                settings.alertmanager_url, timeout, dashboard_url=settings.dashboard_url
            )
        )
    if settings.webhook_url:
        sinks.append(WebhookSink(settings.webhook_url, timeout))
    if not sinks:
        return []
    silenced = SilenceCache(connect_redis(settings.redis_address()), settings.redis_prefix)
    return [
        SinkSender(sink, settings.sink_queue_size, settings.sink_retries, silenced=silenced)
        for sink in sinks
    ]


def open_worker(
    settings: Settings,
    on_alert: Callable[[Alert], None] | None = None,
    client_id: str = "vigil-worker",
) -> Worker:
    """A worker on the configured Kafka backend, Redis and live model."""
    sink = make_sink(settings, client_id=f"{client_id}-out")
    source = make_source(settings, client_id=client_id)
    changelog = make_sink(settings, f"{client_id}-changelog") if settings.changelog_topic else None
    try:
        return build_worker(settings, source, sink, on_alert=on_alert, changelog_sink=changelog)
    except BaseException:  # no Redis, or no model: the clients must not outlive the error
        for client in (source, sink, changelog):
            if client is not None:
                client.close()
        raise


def build_worker(
    settings: Settings,
    source: EventSource,
    sink: RecordSink,
    on_alert: Callable[[Alert], None] | None = None,
    changelog_sink: RecordSink | None = None,
) -> Worker:
    """A worker on the given Kafka source and sink (a real backend's, or the in-memory
    double's in tests) with the configured Redis store and live model; the changelog
    is written through `changelog_sink` if given, else through `sink`."""
    configure_torch(settings)
    store = open_store(settings)
    refuse_evicting(store.client)
    registry = ModelRegistry(settings, store)
    loaded = registry.live_model()  # the live version, or the shipped generic model
    detector = build_detector(settings, loaded)
    watcher = ModelWatcher(registry, settings.model_poll_seconds, current=loaded)
    return assemble_worker(
        settings, source, sink, store, detector, on_alert=on_alert, watcher=watcher,
        senders=open_senders(settings), resets=ResetWatcher(store.client, settings.redis_prefix),
        changelog_sink=changelog_sink,
    )  # fmt: skip


def assemble_worker(
    settings: Settings,
    source: EventSource,
    sink: RecordSink,
    store: StateStore,
    detector: RecurrentDetector,
    **extras: Any,
) -> Worker:
    """A worker from the given parts: its loop settings, decoder and state guard are built
    from `settings` here, so the loop never sees the whole Settings. `extras` are Worker's
    optional parts (on_alert, watcher, senders, resets), and the changelog's own producer
    (changelog_sink)."""
    changelog = extras.pop("changelog_sink", None)
    guard = StateGuard(settings, store, source, sink, changelog_sink=changelog)
    return Worker(
        LoopConfig.of(settings), source, sink, store, detector,
        decode=batch_decoder(settings), guard=guard, **extras,
    )  # fmt: skip


def install_signal_handlers(worker: Worker) -> None:
    """SIGTERM/SIGINT: finish the batch, commit, leave the group."""

    def _handler(signum: int, frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def configure_torch(settings: Settings) -> None:
    """One intra-op thread per worker process: scale with processes, not threads."""
    torch.set_num_threads(settings.torch_threads)
