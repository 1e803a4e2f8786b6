"""What the demo-data tests check on every source: the event contract and ordering."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from pipeline.local.demo_data import InjectedAnomaly
from pipeline.local.demo_data.columns import Columns

Event = dict[str, Any]
N_ACCOUNTS = 1000
STEPS = 300
MAX_FEATURES = 4  # the Settings default the worker validates against


def generated(
    make: Callable[..., tuple[Columns, list[InjectedAnomaly]]], *args: Any, **kwargs: Any
) -> tuple[list[Event], list[InjectedAnomaly]]:
    """A generator's columns as the events the demo produces, with its anomalies."""
    columns, anomalies = make(*args, **kwargs)
    return columns.events(), anomalies


def by_stream(events: Iterable[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        out[event["stream"]].append(event)
    return out


def column(events: list[Event], name: str) -> np.ndarray:
    return np.array([e["values"][name] if name != "value" else e["value"] for e in events])


def inside(events: list[Event], anomaly: InjectedAnomaly) -> list[Event]:
    return [e for e in events if anomaly.start_ms <= e["ts"] <= anomaly.end_ms]


def outside(events: list[Event], anomaly: InjectedAnomaly) -> list[Event]:
    return [e for e in events if not anomaly.start_ms <= e["ts"] <= anomaly.end_ms]


def of_kind(anomalies: list[InjectedAnomaly], kind: str) -> list[InjectedAnomaly]:
    found = [a for a in anomalies if a.kind == kind]
    assert found, f"no {kind} anomaly injected"
    return found


def assert_contract(event: Event) -> None:
    """The event contract the worker's decoder enforces (pipeline/contracts/events.py brief)."""
    stream = event["stream"]
    assert isinstance(stream, str) and 0 < len(stream) <= 200 and stream.isprintable()
    ts = event["ts"]
    assert type(ts) is int and 0 <= ts < 7_258_118_400_000  # 1970 .. 2200
    assert ("value" in event) != ("values" in event)
    if "value" in event:
        numbers = [event["value"]]
    else:
        values = event["values"]
        assert isinstance(values, dict) and 1 <= len(values) <= MAX_FEATURES
        assert all(isinstance(k, str) and 0 < len(k) <= 64 for k in values)
        numbers = list(values.values())
    for x in numbers:
        assert type(x) is float and math.isfinite(x) and abs(x) < 1e12
    for key, meta in event.items():
        if key not in ("stream", "ts", "value", "values"):
            assert isinstance(meta, str)
    json.dumps(event, allow_nan=False)


def assert_strictly_increasing_per_stream(events: Iterable[Event]) -> None:
    last: dict[str, int] = {}
    for event in events:
        previous = last.get(event["stream"])
        assert previous is None or event["ts"] > previous, event
        last[event["stream"]] = event["ts"]
