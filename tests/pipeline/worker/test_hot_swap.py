"""A running worker switches to a newly trained version, and back, without losing a beat.

Real broker, real Redis, a real training run on the topic's own history. Across each
switch: every event is applied exactly once (state counts == events per stream), streams
without anomalies raise no alerts, and spikes after the switch are alerted with the new
`model_version`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from detectors.training.train import TrainConfig
from pipeline.contracts.alerts import Alert
from pipeline.contracts.events import encode_event
from pipeline.kafka.kafka_python import KafkaPythonSink, KafkaPythonSource
from pipeline.local.stack import StackInfo
from pipeline.models.registry import ModelRegistry
from pipeline.models.serving import build_detector
from pipeline.models.trainer import TrainOptions, train_version
from pipeline.models.training_data import read_topic
from pipeline.state.redis import open_store
from pipeline.worker.loop import Worker
from pipeline.worker.model_watch import ModelWatcher
from pipeline.worker.wiring import assemble_worker, create_topics
from tests.pipeline.kafka.helpers import produce, read_all, test_settings

T0 = 1_763_700_000_000
N_STREAMS = 12
# Each spiked stream spikes once (a stream's second spike soon after its first scores
# lower by design: its error statistics have widened), and odd streams never spike.
SPIKED_AFTER_PROMOTION = {f"s-{i:02d}" for i in range(0, N_STREAMS, 4)}
SPIKED_AFTER_ROLLBACK = {f"s-{i:02d}" for i in range(2, N_STREAMS, 4)}
SPIKED = SPIKED_AFTER_PROMOTION | SPIKED_AFTER_ROLLBACK


class Producer:
    """Writes the next step of every stream; spikes the given streams, when asked."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.step = 0
        self.rng = np.random.default_rng(11)
        self.base = self.rng.uniform(20, 80, N_STREAMS)

    def steps(self, n: int, spike_at: int | None = None, spiked: set[str] | None = None) -> None:
        records = []
        for _ in range(n):
            for i in range(N_STREAMS):
                stream = f"s-{i:02d}"
                value = self.base[i] * (1 + 0.2 * math.sin(self.step / 24 * 2 * math.pi))
                value += float(self.rng.normal(0, 0.3))
                if self.step == spike_at and stream in (spiked or set()):
                    value += self.base[i] * 5
                ts = T0 + self.step * 60_000
                records.append((stream.encode(), encode_event(stream, ts, round(value, 4))))
            self.step += 1
        produce(self.bootstrap, self.topic, records)

    @property
    def events(self) -> int:
        return self.step * N_STREAMS


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def switch(worker: Worker, producer: Producer, version: str) -> None:
    """Feed a step at a time until the worker serves `version` (it checks between batches)."""
    deadline = time.monotonic() + 120
    while worker.detector.version != version:
        assert time.monotonic() < deadline, f"worker never switched to {version}"
        producer.steps(1)
        wait_for(lambda: worker.stats.records >= producer.events, "the step to be consumed")


def test_promotion_and_rollback_while_a_worker_consumes(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    s = test_settings(
        stack,
        topic_names,
        topic_partitions=2,
        max_poll_records=50,
        model_dir=str(tmp_path / "models"),
        model_poll_seconds=0.2,
        device="cpu",
    )
    create_topics(s)
    store = open_store(s)
    registry = ModelRegistry(s, store)
    serving = registry.live_model()
    generic = serving.version
    watcher = ModelWatcher(ModelRegistry(s, open_store(s)), s.model_poll_seconds, current=serving)
    worker = assemble_worker(
        s,
        KafkaPythonSource(s, [s.events_topic]),
        KafkaPythonSink(s),
        store,
        build_detector(s, serving),
        watcher=watcher,
    )
    producer = Producer(s.bootstrap_servers, s.events_topic)
    producer.steps(200)
    thread = threading.Thread(target=worker.run, kwargs={"idle_exit_s": 300}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: worker.stats.records >= producer.events, "the first events")
        # Train on the topic's history while the worker consumes more of it.
        producer.steps(20)
        history = read_topic(s, max_seconds=60, idle_seconds=1.0)
        options = TrainOptions(
            promote="force", train=TrainConfig(epochs=2, seq_len=32, burn_in=4, batch_size=32)
        )
        trained = train_version(s, registry, history, options).version.id
        assert trained != generic and registry.live_id() == trained

        switch(worker, producer, trained)
        swapped_at = producer.step
        producer.steps(40, spike_at=swapped_at + 20, spiked=SPIKED_AFTER_PROMOTION)
        wait_for(lambda: worker.stats.records >= producer.events, "the new model's events")

        assert registry.rollback() == generic
        switch(worker, producer, generic)
        rolled_at = producer.step
        producer.steps(40, spike_at=rolled_at + 20, spiked=SPIKED_AFTER_ROLLBACK)
        wait_for(lambda: worker.stats.records >= producer.events, "every event to be consumed")
    finally:
        worker.stop()
        thread.join(60)
    assert not thread.is_alive()

    # Nothing lost, nothing applied twice.
    stats = worker.stats
    assert stats.records == producer.events
    assert stats.applied == producer.events
    assert stats.replays_skipped == 0 and not stats.deadletters
    streams = sorted(SPIKED | {f"s-{i:02d}" for i in range(1, N_STREAMS, 2)})
    states, known = worker.detector.layout.decode(store.load(streams))
    assert known.all()
    assert (states["count"] == producer.step).all()
    assert stats.rewarmed == 2 * N_STREAMS  # every stream re-warmed once per switch

    alerts = [Alert.from_json(r.value) for r in read_all(s.bootstrap_servers, s.alerts_topic)]
    assert len({a.id for a in alerts}) == len(alerts)
    step_of = {a.id: (a.ts_ms - T0) // 60_000 for a in alerts}
    # No burst: streams without anomalies raise nothing after either switch.
    quiet = [a for a in alerts if a.stream not in SPIKED and step_of[a.id] >= swapped_at]
    assert quiet == []
    # Spikes are caught, by the model that was live when they came.
    new_spikes = [a for a in alerts if step_of[a.id] == swapped_at + 20]
    old_spikes = [a for a in alerts if step_of[a.id] == rolled_at + 20]
    assert {a.stream for a in new_spikes} == SPIKED_AFTER_PROMOTION
    assert {a.stream for a in old_spikes} == SPIKED_AFTER_ROLLBACK
    assert {a.model_version for a in new_spikes} == {trained}
    assert {a.model_version for a in old_spikes} == {generic}
    after = Counter(a.model_version for a in alerts if step_of[a.id] >= swapped_at)
    assert set(after) <= {trained, generic}
