"""Pump-sensor demo data: contract, determinism, plausible physics, injected faults."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from pipeline.local.demo_data import InjectedAnomaly, sensor_columns

from .helpers import (
    STEPS,
    Event,
    assert_contract,
    assert_strictly_increasing_per_stream,
    by_stream,
    column,
    generated,
    inside,
    of_kind,
    outside,
)


@pytest.fixture(scope="module")
def sensors() -> tuple[list[Event], list[InjectedAnomaly]]:
    return generated(sensor_columns, 50, STEPS, seed=7)


# --- sensors ------------------------------------------------------------------------------


def test_sensors_are_deterministic_and_keep_the_contract(
    sensors: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    events, anomalies = sensors
    assert generated(sensor_columns, 50, STEPS, seed=7) == (events, anomalies)
    assert generated(sensor_columns, 50, STEPS, seed=8)[0] != events
    streams = by_stream(events)
    assert sorted(streams) == [f"pump-{i:03d}" for i in range(50)]
    assert all(len(rows) == STEPS for rows in streams.values())
    for event in events:
        assert_contract(event)
        assert set(event["values"]) == {"temp", "vibration", "pressure"}
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert_strictly_increasing_per_stream(events)


def test_sensor_magnitudes_cycles_and_correlations_are_plausible(
    sensors: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    events, anomalies = sensors
    special = {a.stream for a in anomalies}
    for name, rows in by_stream(events).items():
        if name in special:
            continue
        temp, vib, pres = (column(rows, f) for f in ("temp", "vibration", "pressure"))
        assert temp.min() > 35 and temp.max() < 85  # °C
        assert vib.min() > 0.3 and vib.max() < 6  # mm/s
        assert pres.min() > 1.5 and pres.max() < 10  # bar
        assert np.corrcoef(temp, pres)[0, 1] > 0.5  # both follow the pump's load
        hours = np.array([datetime.fromtimestamp(e["ts"] / 1000, UTC).hour for e in rows])
        afternoon, small_hours = (hours >= 13) & (hours < 19), hours < 6
        assert temp[afternoon].mean() > temp[small_hours].mean() + 2


def test_every_sensor_anomaly_kind_lands_in_the_data(
    sensors: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    events, anomalies = sensors
    streams = by_stream(events)
    for a in anomalies:
        assert a.stream.startswith("pump-") and not a.benign
        assert inside(streams[a.stream], a), a

    for a in of_kind(anomalies, "spike"):
        hits, rest = inside(streams[a.stream], a), outside(streams[a.stream], a)
        zscores = [
            np.abs(column(hits, f) - column(rest, f).mean()).max() / column(rest, f).std()
            for f in ("temp", "vibration", "pressure")
        ]
        assert max(zscores) > 4

    for a in of_kind(anomalies, "level_shift"):
        before = [e for e in streams[a.stream] if e["ts"] < a.start_ms]
        after = inside(streams[a.stream], a)
        assert column(after, "pressure").mean() < 0.9 * column(before, "pressure").mean()
        assert a.end_ms >= streams[a.stream][-1]["ts"]  # persistent

    for a in of_kind(anomalies, "stuck_sensor"):
        hits = inside(streams[a.stream], a)
        flat = [f for f in ("temp", "pressure") if len(set(column(hits, f))) == 1]
        assert flat and len(hits) >= 18
        assert len(set(column(streams[a.stream], flat[0]))) > STEPS // 2

    for a in of_kind(anomalies, "bearing_wear"):
        rows = streams[a.stream]
        healthy = column([e for e in rows if e["ts"] < a.start_ms], "vibration")
        last_hour = column(rows[-6:], "vibration")
        assert last_hour.mean() > 2 * healthy.mean()  # 3-4x at the end, less at night

    for a in of_kind(anomalies, "correlation_break"):
        hits = inside(streams[a.stream], a)
        rest = outside(streams[a.stream], a)
        in_window = np.corrcoef(column(hits, "temp"), column(hits, "pressure"))[0, 1]
        normally = np.corrcoef(column(rest, "temp"), column(rest, "pressure"))[0, 1]
        assert in_window < 0 < 0.5 < normally
        # Each feature alone stays in its usual range: only the relationship breaks.
        assert column(rest, "pressure").min() * 0.9 < column(hits, "pressure").min()
        assert column(hits, "pressure").max() < column(rest, "pressure").max() * 1.1
