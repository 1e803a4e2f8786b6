"""Episodes end to end: a spike opens an episode, quiet resolves it, and every alert says why."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from detectors.base import StepOutput
from detectors.policy import OPEN, RESOLVE
from pipeline.contracts.alerts import Alert
from pipeline.contracts.episodes import episode_id
from pipeline.contracts.events import Event
from pipeline.kafka.memory import MemoryBroker
from pipeline.local.stack import StackInfo
from pipeline.worker.alerting import alerts_of_event, feature_reasons
from tests.pipeline.kafka.helpers import memory_worker, sensor_events, test_settings


def test_a_spike_opens_an_episode_and_quiet_resolves_it(stack: StackInfo, topic_names: Any) -> None:
    s = test_settings(stack, topic_names, alert_quiet_seconds=600)
    events = sensor_events(n_streams=6, per_stream=130, spike_at=90)
    broker = MemoryBroker()  # the in-memory Kafka double: this is about the worker's alerts
    worker = memory_worker(s, broker)
    broker.produce_all(s.events_topic, events)
    assert worker.run(idle_exit_s=0).records == len(events)

    alerts = [Alert.from_json(r.value) for r in broker.records(s.alerts_topic)]
    by_stream: dict[str, list[Alert]] = {}
    for a in alerts:
        by_stream.setdefault(a.stream, []).append(a)
    spiked = [
        ss
        for ss in by_stream.values()
        if any(a.ts_ms == ss[0].ts_ms and a.action == "open" for a in ss)
    ]
    assert len(spiked) >= 5
    for stream_alerts in spiked:
        stream_alerts.sort(key=lambda a: a.ts_ms)
        first, last = stream_alerts[0], stream_alerts[-1]
        assert first.state == "firing" and first.episode is not None
        assert first.episode.id == episode_id(first.stream, first.ts_ms)
        assert last.state == "resolved" and last.episode is not None
        assert last.episode.id == first.episode.id
        # resolved ten quiet minutes after the last loud event, which is the spike or soon after
        assert last.ts_ms - first.ts_ms >= 600_000
        assert last.episode.peak >= first.score
        reason = first.reason
        assert reason is not None and reason.fired in reason.evidence
        assert reason.evidence[reason.fired] == max(reason.evidence.values())
        assert reason.features[0].name == "value" and reason.features[0].share == 1.0
        assert reason.features[0].lower < reason.features[0].expected < reason.features[0].upper
        assert "value is" in reason.text and last.reason is not None
        assert last.reason.text.startswith("resolved: no anomalous score for 10 min")


def _output(action: int, start: int, peak: float) -> StepOutput:
    return StepOutput(
        scores=np.array([0.9], np.float32),
        expected=np.array([[10.0, 5.0]], np.float32),
        top_feature=np.array([0]),
        alerts=np.array([action == OPEN]),
        action=np.array([action], np.int8),
        episode_start=np.array([start], np.int64),
        episode_peak=np.array([peak], np.float32),
        sources=("error", "level@1h"),
        by_source=np.array([[0.2, 0.9]], np.float32),
        rewarmed=np.array([False]),
        states=np.zeros(1),
    )


def _before(in_episode: bool) -> np.void:
    dtype = np.dtype([("flags", "u1"), ("episode_start", "<i8"), ("episode_loud", "<i8"),
                      ("episode_peak", "<f4"), ("norm_mean", "<f4", (2,)),
                      ("norm_var", "<f4", (2,))])  # fmt: skip
    before = np.zeros(1, dtype)
    before["flags"] = 1 if in_episode else 0
    before["episode_start"], before["episode_loud"], before["episode_peak"] = 1000, 61_000, 0.8
    before["norm_mean"], before["norm_var"] = [10.0, 5.0], [4.0, 1.0]
    return before[0]


EVENT = Event(stream="acct-1", ts_ms=5_000_000, features=("amount", "count"), values=(40.0, 6.0),
              meta={"country": "FR"}, partition=0, offset=9, topic="t")  # fmt: skip


def test_an_episode_that_ends_and_reopens_on_one_event_sends_both_alerts() -> None:
    alerts = alerts_of_event(EVENT, _output(OPEN, EVENT.ts_ms, 0.9), 0, _before(True), "m", "d")
    assert [a.action for a in alerts] == ["resolve", "open"]
    old, new = (a.episode for a in alerts)
    assert old is not None and new is not None
    assert (
        old.id == episode_id("acct-1", 1000)
        and old.duration_s == 60.0
        and old.peak == pytest.approx(0.8)
    )
    assert new.id == episode_id("acct-1", EVENT.ts_ms)
    assert alerts[1].reason is not None and alerts[1].reason.fired == "level@1h"
    assert alerts[1].meta == {"country": "FR"}


def test_a_resolve_outside_an_episode_change_is_one_alert() -> None:
    alerts = alerts_of_event(EVENT, _output(RESOLVE, 0, 0.0), 0, _before(True), "m", "d")
    assert [a.state for a in alerts] == ["resolved"]
    assert alerts_of_event(EVENT, _output(0, 0, 0.0), 0, _before(False), "m", "d") == []


def test_feature_shares_rank_the_features_by_deviation_in_their_own_spread() -> None:
    before = _before(False)
    reasons = feature_reasons(EVENT, np.array([10.0, 5.0]), before["norm_mean"], before["norm_var"])
    # amount is 30 above expected with spread 2 (15 spreads), count 1 above with spread 1
    assert [r.name for r in reasons] == ["amount", "count"]
    assert abs(reasons[0].share - 15 / 16) < 1e-3 and abs(sum(r.share for r in reasons) - 1) < 1e-9
    assert abs(reasons[0].upper - (10.0 + 3 * 2.0)) < 0.01  # spread floored a little
