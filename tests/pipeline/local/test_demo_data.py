"""Tests for the demo data generators: contract, determinism, realism and injected anomalies."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.local import demo_data
from pipeline.local.demo_data import (
    DemoDataError,
    InjectedAnomaly,
    demo_events,
    find_nab_dir,
    nab_dir_candidate,
    nab_events,
    nab_windows,
    sensor_events,
    transaction_events,
)

Event = dict[str, Any]
N_ACCOUNTS = 1000
STEPS = 300
MAX_FEATURES = 4  # the Settings default the worker validates against


@pytest.fixture(scope="module")
def transactions() -> tuple[list[Event], list[InjectedAnomaly]]:
    return transaction_events(N_ACCOUNTS, STEPS, seed=7)


@pytest.fixture(scope="module")
def sensors() -> tuple[list[Event], list[InjectedAnomaly]]:
    return sensor_events(50, STEPS, seed=7)


@pytest.fixture(scope="module")
def nab_dir() -> Path:
    found = find_nab_dir()
    if found is None:
        pytest.fail(
            f"NAB data not found at {nab_dir_candidate()}: CI must have ../shared beside the "
            f"repository (or set {demo_data.NAB_DIR_ENV})"
        )
    return found


@pytest.fixture(scope="module")
def nab(nab_dir: Path) -> list[Event]:
    return nab_events(nab_dir)


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


# --- transactions ---------------------------------------------------------------------


def test_transactions_are_deterministic_for_a_seed(
    transactions: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    assert transaction_events(N_ACCOUNTS, STEPS, seed=7) == transactions
    other, _ = transaction_events(N_ACCOUNTS, STEPS, seed=8)
    assert other != transactions[0]


def test_transactions_cover_at_least_1000_accounts_and_keep_the_contract(
    transactions: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    events, _ = transactions
    streams = by_stream(events)
    assert len(streams) >= 1000
    assert all(name.startswith("acct-") and len(name) == 10 for name in streams)
    for event in events:
        assert_contract(event)
        assert set(event["values"]) == {"amount", "merchant_risk"}
        assert event["values"]["amount"] > 0
        assert 0 <= event["values"]["merchant_risk"] <= 1
        assert event["kind"] in ("card", "online", "contactless")
        assert event["merchant"].startswith("m-")


def test_transactions_are_in_time_order_and_strictly_increasing_per_stream(
    transactions: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    events, _ = transactions
    stamps = [e["ts"] for e in events]
    assert stamps == sorted(stamps)
    assert_strictly_increasing_per_stream(events)
    end = demo_data.DEMO_START_MS + STEPS * demo_data.DEFAULT_STEP_MS
    assert stamps[0] >= demo_data.DEMO_START_MS and stamps[-1] < end


def test_transactions_follow_the_day_and_the_week() -> None:
    # Four days from Friday cover a weekend; keep the accounts without injected stories.
    events, anomalies = transaction_events(300, demo_data.DEFAULT_STEPS, seed=3)
    special = {a.stream for a in anomalies}
    normal = [e for e in events if e["stream"] not in special]
    hours = np.array([datetime.fromtimestamp(e["ts"] / 1000, UTC).hour for e in normal])
    weekday = np.array([datetime.fromtimestamp(e["ts"] / 1000, UTC).weekday() for e in normal])
    amount = column(normal, "amount")
    day, night = (hours >= 10) & (hours < 20), (hours >= 0) & (hours < 6)
    # Same number of hours in each comparison is not needed: compare per-hour rates.
    assert np.sum(day) / 10 > 1.8 * np.sum(night) / 6
    assert np.median(amount[day]) > np.median(amount[night])
    weekend, workday = weekday >= 5, weekday < 5
    assert np.sum(weekend) / 2 < np.sum(workday) / 2  # two weekdays, two weekend days
    assert np.median(amount[weekend]) > np.median(amount[workday])


def test_account_amounts_are_log_normal_with_their_own_scale(
    transactions: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    events, anomalies = transactions
    special = {a.stream for a in anomalies}
    medians = [
        np.median(column(rows, "amount"))
        for name, rows in by_stream(events).items()
        if name not in special
    ]
    # Account scales differ by well over an order of magnitude, as real customers do.
    assert np.percentile(medians, 95) > 5 * np.percentile(medians, 5)
    plain = next(name for name in sorted(by_stream(events)) if name not in special)
    logs = np.log(column(by_stream(events)[plain], "amount"))
    assert abs(np.mean(logs) - np.median(logs)) < 0.3  # roughly symmetric in log space


def test_fraud_bursts_are_large_risky_and_in_the_data(
    transactions: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    events, anomalies = transactions
    streams = by_stream(events)
    bursts = of_kind(anomalies, "fraud_burst")
    assert 0.01 * N_ACCOUNTS <= len(bursts) <= 0.05 * N_ACCOUNTS
    for burst in bursts:
        assert not burst.benign
        hits = inside(streams[burst.stream], burst)
        typical = np.median(column(outside(streams[burst.stream], burst), "amount"))
        assert len(hits) >= 3
        assert column(hits, "amount").min() > 5 * typical
        assert column(hits, "merchant_risk").min() > 0.7
        assert burst.end_ms - burst.start_ms < 2 * 3_600_000  # a short time


def test_card_testing_runs_are_tiny_amounts_at_one_merchant(
    transactions: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    events, anomalies = transactions
    streams = by_stream(events)
    for run in of_kind(anomalies, "card_testing"):
        hits = inside(streams[run.stream], run)
        assert len(hits) >= 6
        assert column(hits, "amount").max() < 2.0
        assert len({e["merchant"] for e in hits}) == 1
        assert all(e["kind"] == "online" for e in hits)


def test_benign_shifts_raise_spending_without_being_fraud(
    transactions: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    events, anomalies = transactions
    streams = by_stream(events)
    for kind in ("salary_day", "spending_shift"):
        for shift in of_kind(anomalies, kind):
            assert shift.benign
            during = column(inside(streams[shift.stream], shift), "amount")
            before = column(
                [e for e in streams[shift.stream] if e["ts"] < shift.start_ms], "amount"
            )
            assert np.median(during) > 1.3 * np.median(before)
            risk = column(inside(streams[shift.stream], shift), "merchant_risk")
            assert np.median(risk) < 0.2


def test_each_account_tells_at_most_one_story(
    transactions: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    _, anomalies = transactions
    assert len({a.stream for a in anomalies}) == len(anomalies)


# --- sensors ------------------------------------------------------------------------------


def test_sensors_are_deterministic_and_keep_the_contract(
    sensors: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    events, anomalies = sensors
    assert sensor_events(50, STEPS, seed=7) == (events, anomalies)
    assert sensor_events(50, STEPS, seed=8)[0] != events
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


# --- NAB ------------------------------------------------------------------------------------


def test_nab_loader_reads_every_row_of_the_real_folder(nab_dir: Path, nab: list[Event]) -> None:
    files = sorted(nab_dir.glob("*/*.csv"))
    assert len(files) >= 30
    streams = by_stream(nab)
    assert len(streams) == len(files)
    for path in files:
        name = f"nab.{path.parent.name}.{path.stem}"
        with path.open() as fh:
            n_rows = sum(1 for _ in fh) - 1
        assert len(streams[name]) == n_rows, name
    for event in nab:
        assert_contract(event)
    assert_strictly_increasing_per_stream(nab)


def test_nab_rows_keep_their_timestamps_and_values(nab: list[Event]) -> None:
    taxi = by_stream(nab)["nab.realKnownCause.nyc_taxi"]
    first_ms = int(datetime(2014, 7, 1, tzinfo=UTC).timestamp() * 1000)
    assert taxi[0] == {"stream": "nab.realKnownCause.nyc_taxi", "ts": first_ms, "value": 10844.0}
    assert taxi[1]["ts"] - taxi[0]["ts"] == 30 * 60 * 1000
    # A daylight-saving repeat of 03:00 is kept, one millisecond after the previous row.
    latency = by_stream(nab)["nab.realKnownCause.ec2_request_latency_system_failure"]
    gaps = np.diff([e["ts"] for e in latency])
    assert (gaps == 1).sum() >= 10


def test_nab_streams_are_interleaved_by_row_index(nab_dir: Path, nab: list[Event]) -> None:
    n_files = len(list(nab_dir.glob("*/*.csv")))
    first_rows = nab[:n_files]
    assert len({e["stream"] for e in first_rows}) == n_files
    limited = nab_events(nab_dir, max_rows_per_file=5)
    assert len(limited) == 5 * n_files
    assert limited[:n_files] == first_rows


def test_nab_windows_are_read(nab_dir: Path, nab: list[Event]) -> None:
    windows = nab_windows(nab_dir)
    labelled = json.loads((nab_dir / "windows.json").read_text())
    assert len(windows) == sum(len(w) for w in labelled.values())
    names = set(by_stream(nab))
    for w in windows:
        assert w.kind == "nab_window" and w.stream in names and w.start_ms < w.end_ms


def test_a_folder_without_nab_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DemoDataError, match="no NAB data"):
        nab_events(tmp_path)


def test_find_nab_dir_honours_explicit_path_then_env(
    nab_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(demo_data.NAB_DIR_ENV, raising=False)
    assert find_nab_dir(str(nab_dir)) == nab_dir
    # An explicit path that is wrong is reported as missing, not replaced by the default.
    assert find_nab_dir(tmp_path / "nowhere") is None
    assert find_nab_dir(tmp_path) is None  # a folder with no CSVs is not NAB data
    monkeypatch.setenv(demo_data.NAB_DIR_ENV, str(tmp_path / "nowhere"))
    assert find_nab_dir() is None
    assert nab_dir_candidate() == tmp_path / "nowhere"
    monkeypatch.setenv(demo_data.NAB_DIR_ENV, str(nab_dir))
    assert find_nab_dir() == nab_dir


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,value\n2014-01-01 00:00:00,1\n", "expected header"),
        ("timestamp,value\nyesterday,1\n", "bad timestamp"),
        ("timestamp,value\n2014-01-01 00:00:00,lots\n", "not a number"),
        ("timestamp,value\n2014-01-01 00:00:00,nan\n", "non-finite"),
        ("timestamp,value\n2014-01-01 00:00:00\n", "line 2"),
        ("timestamp,value\n2014-01-01 00:00:00,\xff\n", "not a readable CSV"),
    ],
)
def test_a_broken_nab_file_gives_a_one_line_error(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "bad.csv").write_bytes(content.encode("latin-1"))
    with pytest.raises(DemoDataError, match=message) as info:
        nab_events(tmp_path)
    assert "\n" not in str(info.value) and "bad.csv" in str(info.value)


# --- bad parameters and the merged demo stream -----------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: transaction_events(0, STEPS, 0), "accounts must be at least 1"),
        (lambda: transaction_events(10, 20, 0), "steps must be at least"),
        (lambda: sensor_events(-1, STEPS, 0), "pumps must be at least 1"),
        (lambda: sensor_events(5, STEPS, 0, step_ms=10), "step must be at least"),
        (lambda: sensor_events(5, STEPS, -3), "seed must be a non-negative"),
    ],
)
def test_bad_sizes_give_a_clear_error(call: Any, message: str) -> None:
    with pytest.raises(DemoDataError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_demo_merges_all_sources_by_tick(nab_dir: Path) -> None:
    data = demo_events(nab_dir, n_accounts=1000, n_pumps=20, steps=200, seed=1, max_nab_rows=300)
    events = list(data.events)
    n_nab_files = len(list(nab_dir.glob("*/*.csv")))
    assert data.n_streams == 1000 + 20 + n_nab_files
    assert data.nab_dir == nab_dir
    streams = by_stream(events)
    assert len(streams) == data.n_streams

    tx, tx_anomalies = transaction_events(1000, 200, seed=1)
    pumps, pump_anomalies = sensor_events(20, 200, seed=1)
    nab = nab_events(nab_dir, max_rows_per_file=300)
    assert len(events) == len(tx) + len(pumps) + len(nab)
    assert [e for e in events if e["stream"].startswith("acct-")] == tx
    assert [e for e in events if e["stream"].startswith("pump-")] == pumps

    assert_strictly_increasing_per_stream(events)
    synthetic = [e["ts"] for e in events if not e["stream"].startswith("nab.")]
    assert synthetic == sorted(synthetic)
    # Row k of every NAB file plays within simulated slot k, so all streams move together.
    step, start = demo_data.DEFAULT_STEP_MS, demo_data.DEMO_START_MS
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


def test_demo_without_nab_or_pumps(tmp_path: Path) -> None:
    data = demo_events(None, n_accounts=5, n_pumps=0, steps=demo_data.MIN_STEPS, seed=0)
    events = list(data.events)
    assert data.n_streams == 5 and data.nab_dir is None
    assert {e["stream"] for e in events} <= {f"acct-{i:05d}" for i in range(5)}
    assert all(not a.stream.startswith(("nab.", "pump-")) for a in data.anomalies)
    assert data.anomalies  # even five accounts get a fraud story to detect
