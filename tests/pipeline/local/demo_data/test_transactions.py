"""Card-transaction demo data: contract, determinism, realism and injected fraud."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from pipeline.local.demo_data import DEMO_START_MS, InjectedAnomaly, transaction_columns
from pipeline.local.demo_data.columns import DEFAULT_STEP_MS, DEFAULT_STEPS

from .helpers import (
    N_ACCOUNTS,
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
def transactions() -> tuple[list[Event], list[InjectedAnomaly]]:
    return generated(transaction_columns, N_ACCOUNTS, STEPS, seed=7)


# --- transactions ---------------------------------------------------------------------


def test_transactions_are_deterministic_for_a_seed(
    transactions: tuple[list[Event], list[InjectedAnomaly]],
) -> None:
    assert generated(transaction_columns, N_ACCOUNTS, STEPS, seed=7) == transactions
    other, _ = generated(transaction_columns, N_ACCOUNTS, STEPS, seed=8)
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
    end = DEMO_START_MS + STEPS * DEFAULT_STEP_MS
    assert stamps[0] >= DEMO_START_MS and stamps[-1] < end


def test_transactions_follow_the_day_and_the_week() -> None:
    # Four days from Friday cover a weekend; keep the accounts without injected stories.
    events, anomalies = generated(transaction_columns, 300, DEFAULT_STEPS, seed=3)
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
