"""Alert ids are deterministic; alerts survive a JSON round trip unchanged."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.contracts.alerts import Alert, alert_id, iso_utc
from pipeline.contracts.episodes import (
    Episode,
    FeatureReason,
    Reason,
    episode_id,
    resolve_id,
    sentence,
)
from pipeline.contracts.events import Event

TS = 1763719200123


def make_alert(**changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "id": alert_id("pump-7", TS),
        "stream": "pump-7",
        "ts": iso_utc(TS),
        "ts_ms": TS,
        "score": 0.93,
        "values": {"temp": 71.2, "vibration": 0.03},
        "expected": {"temp": 65.0, "vibration": 0.031},
        "top_feature": "temp",
        "model_version": "gru-20261121-01",
        "detector": "gru",
        "meta": {"site": "plant-3", "tags": ["a", "é"], "n": None},
        "partition": 2,
        "offset": 1234,
    }
    fields.update(changes)
    return Alert(**fields)


def test_alert_id_is_deterministic_and_32_hex() -> None:
    first = alert_id("acct-42", TS)
    assert first == alert_id("acct-42", TS)
    assert len(first) == 32 and int(first, 16) >= 0


def test_alert_id_is_stable_across_releases() -> None:
    # Downstream de-duplicates on this id: changing the scheme re-sends every alert.
    # The pinned value is sha256('["vigil.alert.v1","acct-42",1763719200000]')[:32].
    assert alert_id("acct-42", 1763719200000) == "6ad31b10916ef7a78bf76c61124def0e"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("acct-42", TS), ("acct-42", TS + 1)),
        (("acct-42", TS), ("acct-43", TS)),
        (("a1", 23), ("a", 123)),
        (('a",1', 2), ("a", 12)),
    ],
)
def test_alert_id_differs_for_different_events(a: tuple[str, int], b: tuple[str, int]) -> None:
    assert alert_id(*a) != alert_id(*b)


def test_alert_id_refuses_non_integer_timestamps() -> None:
    with pytest.raises(TypeError):
        alert_id("acct-42", 1.5)  # type: ignore[arg-type]


@given(st.text(), st.integers(min_value=0, max_value=7289654399999))
def test_alert_id_never_raises(stream: str, ts_ms: int) -> None:
    assert alert_id(stream, ts_ms) == alert_id(stream, ts_ms)


def test_iso_utc() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(TS) == "2025-11-21T10:00:00.123Z"


def test_round_trip() -> None:
    alert = make_alert()
    raw = alert.to_json()
    assert Alert.from_json(raw) == alert
    assert Alert.from_json(raw.decode()) == alert


def test_json_is_compact_with_the_named_keys() -> None:
    raw = make_alert().to_json()
    assert b": " not in raw and b", " not in raw
    body = json.loads(raw)
    assert list(body) == [
        "id",
        "stream",
        "ts",
        "ts_ms",
        "score",
        "values",
        "expected",
        "top_feature",
        "model_version",
        "detector",
        "meta",
        "partition",
        "offset",
        "state",
        "action",
    ]
    assert body["ts"] == "2025-11-21T10:00:00.123Z"
    assert body["meta"]["tags"] == ["a", "é"]


def test_meta_with_an_integer_beyond_64_bits_is_written_whole() -> None:
    alert = make_alert(meta={"big": 2**70, "name": "é"})
    assert json.loads(alert.to_json())["meta"] == {"big": 2**70, "name": "é"}
    assert Alert.from_json(alert.to_json()) == alert


def test_single_value_stream_also_gets_plain_value() -> None:
    alert = make_alert(values={"value": 12.5}, expected={"value": 3.0}, top_feature="value")
    body = json.loads(alert.to_json())
    assert body["value"] == 12.5
    assert body["values"] == {"value": 12.5}
    assert Alert.from_json(alert.to_json()) == alert


def test_non_finite_expectation_is_written_as_null() -> None:
    alert = make_alert(expected={"temp": math.nan, "vibration": math.inf})
    body = json.loads(alert.to_json())
    assert body["expected"] == {"temp": None, "vibration": None}
    back = Alert.from_json(alert.to_json())
    assert all(math.isnan(x) for x in back.expected.values())


def test_numpy_like_scalars_are_coerced() -> None:
    class Scalar(float):
        pass

    alert = make_alert(score=Scalar(0.5), values={"temp": Scalar(1.0)})
    assert type(alert.score) is float and type(alert.values["temp"]) is float
    json.loads(alert.to_json())


@pytest.mark.parametrize("score", [-0.01, 1.01, math.nan, math.inf])
def test_score_must_be_a_probability(score: float) -> None:
    with pytest.raises(ValueError, match="score"):
        make_alert(score=score)


def test_for_event() -> None:
    event = Event(
        stream="acct-42",
        ts_ms=TS,
        features=("value",),
        values=(12.5,),
        meta={"currency": "EUR"},
        partition=1,
        offset=77,
        topic="vigil.events",
    )
    alert = Alert.for_event(
        event,
        score=0.8,
        expected={"value": 3.0},
        top_feature="value",
        model_version="v1",
        detector="gru",
    )
    assert alert.id == alert_id("acct-42", TS)
    assert (alert.ts, alert.ts_ms, alert.values, alert.meta) == (
        "2025-11-21T10:00:00.123Z",
        TS,
        {"value": 12.5},
        {"currency": "EUR"},
    )
    assert (alert.partition, alert.offset) == (1, 77)
    assert Alert.from_json(alert.to_json()) == alert


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"nope", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b"[1]", "not a JSON object"),
        (b"{}", "no 'id'"),
    ],
)
def test_from_json_rejects_non_alerts(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Alert.from_json(raw)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("score", "high"),
        ("score", 10**400),
        ("ts_ms", True),
        ("ts_ms", 1.5),
        ("stream", 42),
        ("values", [1]),
        ("expected", {"temp": "hot"}),
        ("meta", None),
    ],
)
def test_from_json_rejects_wrong_types(name: str, value: Any) -> None:
    body = json.loads(make_alert().to_json())
    body[name] = value
    with pytest.raises(ValueError) as caught:
        Alert.from_json(json.dumps(body).encode())
    assert "\n" not in str(caught.value)


def test_episode_and_reason_survive_a_round_trip() -> None:
    features = [FeatureReason("temp", 71.2, 65.0, 62.0, 68.0, 0.8),
                FeatureReason("vibration", 0.03, 0.031, math.nan, 0.04, 0.2)]  # fmt: skip
    reason = Reason(fired="level@1h", evidence={"error": 0.2, "level@1h": 0.93}, features=features)
    episode = Episode(id=episode_id("pump-7", TS - 60_000), start_ms=TS - 60_000, peak=0.95,
                      duration_s=60.0)  # fmt: skip
    alert = make_alert(action="escalate", episode=episode, reason=reason)
    back = Alert.from_json(alert.to_json())
    assert back.state == "firing" and back.action == "escalate"
    assert back.episode == episode
    assert back.reason is not None and back.reason.fired == "level@1h"
    assert back.reason.features[0] == features[0]
    assert math.isnan(back.reason.features[1].lower)


def test_an_alert_without_episode_fields_reads_as_a_firing_open_alert() -> None:
    body = json.loads(make_alert().to_json())
    for key in ("state", "action"):
        del body[key]
    back = Alert.from_json(json.dumps(body))
    assert (back.state, back.action, back.episode, back.reason) == ("firing", "open", None, None)


@pytest.mark.parametrize(
    "change",
    [{"state": "closed"}, {"state": "resolved", "action": "open"}, {"action": "resolve"}],
)
def test_inconsistent_state_and_action_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"state|resolved"):
        make_alert(**change)


def test_a_malformed_episode_is_a_value_error() -> None:
    body = json.loads(make_alert().to_json())
    body["episode"] = {"id": "x"}
    with pytest.raises(ValueError, match="episode or reason"):
        Alert.from_json(json.dumps(body))


def test_a_resolve_alert_is_named_by_its_episode_not_its_event() -> None:
    event = Event(stream="pump-7", ts_ms=TS, features=("temp",), values=(70.0,), meta={},
                  partition=0, offset=5, topic="t")  # fmt: skip
    episode = Episode(id=episode_id("pump-7", TS - 5000), start_ms=TS - 5000, peak=0.9,
                      duration_s=3.0)  # fmt: skip
    common: dict[str, Any] = {"score": 0.1, "expected": {"temp": 70.0}, "top_feature": "temp",
                              "model_version": "m", "detector": "d"}  # fmt: skip
    resolved = Alert.for_event(event, action="resolve", episode=episode, **common)
    later = dataclasses.replace(event, ts_ms=TS + 1)
    again = Alert.for_event(later, action="resolve", episode=episode, **common)
    assert resolved.state == "resolved" and resolved.id == again.id == resolve_id(
        "pump-7", TS - 5000
    )
    assert resolved.id != alert_id("pump-7", TS)
    with pytest.raises(ValueError, match="needs its episode"):
        Alert.for_event(event, action="resolve", **common)


def test_the_sentence_names_the_feature_the_ratio_the_evidence_and_the_duration() -> None:
    reason = Reason(fired="level@1h", evidence={"level@1h": 0.9},
                    features=[FeatureReason("p99_ms", 430.0, 120.0, 90.0, 150.0, 1.0)])  # fmt: skip
    episode = Episode(id="e", start_ms=0, peak=0.97, duration_s=2400.0)
    text = sentence("firing", reason, episode)
    assert text.startswith("p99_ms is 430, 3.6x expected 120 (usual 90 to 150)")
    assert "sustained deviation" in text and "(over 1h)" in text and "40 min" in text
    resolved = sentence("resolved", reason, episode, ts_ms=(2400 + 1800) * 1000)
    assert resolved == (
        "resolved: no anomalous score for 30 min; anomalous for 40 min (peak score 0.97)"
    )
