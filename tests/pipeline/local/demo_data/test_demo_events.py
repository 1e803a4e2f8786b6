"""The merged demo stream (all sources by tick) and bad generator parameters."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from detectors.evaluation.nab_sample import SAMPLE_DIR
from pipeline.local.demo_data import (
    DemoDataError,
    demo_events,
    nab_events,
    sensor_columns,
    transaction_columns,
)
from pipeline.local.demo_data.columns import DEFAULT_STEP_MS, DEMO_START_MS, MIN_STEPS

from .helpers import STEPS, assert_strictly_increasing_per_stream, by_stream, generated

# --- bad parameters and the merged demo stream -----------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: generated(transaction_columns, 0, STEPS, 0), "accounts must be at least 1"),
        (lambda: generated(transaction_columns, 10, 20, 0), "steps must be at least"),
        (lambda: generated(sensor_columns, -1, STEPS, 0), "pumps must be at least 1"),
        (lambda: generated(sensor_columns, 5, STEPS, 0, step_ms=10), "step must be at least"),
        (lambda: generated(sensor_columns, 5, STEPS, -3), "seed must be a non-negative"),
    ],
)
def test_bad_sizes_give_a_clear_error(call: Any, message: str) -> None:
    with pytest.raises(DemoDataError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_demo_merges_all_sources_by_tick() -> None:
    data = demo_events(
        [SAMPLE_DIR], n_accounts=1000, n_pumps=20, steps=200, seed=1, max_nab_rows=300
    )
    events = list(data.events)
    n_nab_files = len(list(SAMPLE_DIR.glob("*/*.csv")))
    assert data.n_streams == 1000 + 20 + n_nab_files
    assert len(data.nab_streams) == n_nab_files
    streams = by_stream(events)
    assert len(streams) == data.n_streams

    tx, tx_anomalies = generated(transaction_columns, 1000, 200, seed=1)
    pumps, pump_anomalies = generated(sensor_columns, 20, 200, seed=1)
    nab = nab_events([SAMPLE_DIR], max_rows_per_file=300)
    assert len(events) == len(tx) + len(pumps) + len(nab)
    assert [e for e in events if e["stream"].startswith("acct-")] == tx
    assert [e for e in events if e["stream"].startswith("pump-")] == pumps

    assert_strictly_increasing_per_stream(events)
    synthetic = [e["ts"] for e in events if not e["stream"].startswith("nab.")]
    assert synthetic == sorted(synthetic)
    # Row k of every NAB file plays within simulated slot k, so all streams move together.
    step, start = DEFAULT_STEP_MS, DEMO_START_MS
    seen_rows: dict[str, int] = defaultdict(int)
    for event in events:
        if event["stream"].startswith("nab."):
            seen_rows[event["stream"]] += 1
        elif event["stream"] == "pump-000":
            slot = (event["ts"] - start) // step
            assert all(n == slot + 1 for n in seen_rows.values()), slot
    assert set(seen_rows.values()) == {300}

    kinds = {a.kind for a in data.anomalies}
    assert {"fraud_burst", "card_testing", "bearing_wear", "nab_window"} <= kinds
    assert set(tx_anomalies + pump_anomalies) <= set(data.anomalies)
    last_nab_ts = {name: rows[-1]["ts"] for name, rows in streams.items() if "nab." in name}
    for window in (a for a in data.anomalies if a.kind == "nab_window"):
        assert window.start_ms <= last_nab_ts[window.stream]


def test_demo_without_nab_or_pumps() -> None:
    data = demo_events([], n_accounts=5, n_pumps=0, steps=MIN_STEPS, seed=0)
    events = list(data.events)
    assert data.n_streams == 5 and data.nab_streams == []
    assert {e["stream"] for e in events} <= {f"acct-{i:05d}" for i in range(5)}
    assert all(not a.stream.startswith(("nab.", "pump-")) for a in data.anomalies)
    assert data.anomalies  # even five accounts get a fraud story to detect
