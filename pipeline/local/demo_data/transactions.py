"""Per-account card transactions for `vigil demo`: 2 features (amount, merchant risk) plus
the merchant and payment kind as meta, with fraud bursts, card testing and two benign
changes (salary day, a new spending habit) injected in the second half.

    {"stream": "acct-00042", "ts": 1763604300000,
     "values": {"amount": 23.9, "merchant_risk": 0.041}, "merchant": "m-0193", "kind": "card"}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.local.demo_data.columns import (
    DAY_MS,
    DEFAULT_STEP_MS,
    DEMO_START_MS,
    Columns,
    InjectedAnomaly,
    daytime,
    late_start,
    pick_streams,
    slot_grid,
    window,
)
from pipeline.local.demo_data.columns import weekend as is_weekend

_TX_KINDS = ("card", "online", "contactless")
_MERCHANTS = tuple(f"m-{i:04d}" for i in range(10_000))
_RISKY_MERCHANTS = (9_000, 10_000)  # a block of ids used only by fraudsters


@dataclass
class _Draws:
    """The per-(account, slot) draws a scenario rewrites in place."""

    mu: np.ndarray
    rate: np.ndarray
    log_amount: np.ndarray
    risk: np.ndarray
    merchant: np.ndarray
    kind: np.ndarray
    forced: np.ndarray


def _inject(
    rng: np.random.Generator, d: _Draws, a: int, scenario: str, steps: int, step_ms: int
) -> tuple[int, int]:
    """Write one labelled scenario into account a's draws; -> (first slot, length)."""
    if scenario == "fraud_burst":
        # A stolen card: several large purchases at risky merchants within an hour.
        length = int(rng.integers(3, 7))
        run = slice(s0 := late_start(rng, steps, length), s0 + length)
        d.log_amount[a, run] = d.mu[a, 0] + np.log(rng.uniform(12.0, 35.0, length))
        d.risk[a, run] = rng.uniform(0.75, 0.98, length)
        d.merchant[a, run] = rng.integers(*_RISKY_MERCHANTS, length)
        d.kind[a, run] = rng.integers(0, 2, length)  # card or online
        d.forced[a, run] = True
    elif scenario == "card_testing":
        # Probing a card number: a run of tiny online payments at one dubious merchant.
        length = int(rng.integers(6, 13))
        run = slice(s0 := late_start(rng, steps, length), s0 + length)
        d.log_amount[a, run] = np.log(rng.uniform(0.1, 1.5, length))
        d.risk[a, run] = rng.uniform(0.45, 0.85, length)
        d.merchant[a, run] = rng.integers(*_RISKY_MERCHANTS)
        d.kind[a, run] = _TX_KINDS.index("online")
        d.forced[a, run] = True
    elif scenario == "salary_day":
        # Payday: a day of more and bigger purchases, then back to normal.
        length = min(DAY_MS // step_ms, steps // 4)
        run = slice(s0 := late_start(rng, steps, length), s0 + length)
        d.log_amount[a, run] += np.log(rng.uniform(1.8, 2.5))
        d.rate[a, run] *= 1.3
    else:
        # A new habit (moved house, new job): spending stays higher from here on.
        length = steps - (s0 := late_start(rng, steps, 0))
        d.log_amount[a, s0:steps] += np.log(rng.uniform(1.8, 3.0))
    return s0, length


def transaction_columns(
    n_accounts: int,
    steps: int,
    seed: int,
    start_ms: int = DEMO_START_MS,
    step_ms: int = DEFAULT_STEP_MS,
) -> tuple[Columns, list[InjectedAnomaly]]:
    rng, shape, slot_ms = slot_grid(n_accounts, "accounts", steps, seed, 1, start_ms, step_ms)
    day = daytime(slot_ms)
    weekend = is_weekend(slot_ms)

    # Per account: how busy it is, its typical spend (log-normal scale) and its spread.
    activity = rng.uniform(0.7, 1.0, n_accounts)[:, None]
    mu = rng.normal(np.log(35.0), 0.6, n_accounts)[:, None]
    sigma = rng.uniform(0.4, 0.9, n_accounts)[:, None]
    # Chance of a transaction in a slot: low at night, lower at weekends.
    rate = activity * (0.3 + 0.65 * day) * np.where(weekend, 0.85, 1.0)
    # Bigger baskets by day and at weekends.
    log_amount = mu + 0.3 * (day - 0.5) + 0.2 * weekend + sigma * rng.standard_normal(shape)
    risk = rng.beta(1.5, 25.0, shape)
    favourites = rng.integers(0, _RISKY_MERCHANTS[0], (n_accounts, 8))
    merchant = np.take_along_axis(favourites, rng.integers(0, 8, shape), axis=1)
    elsewhere = rng.random(shape) < 0.15
    merchant[elsewhere] = rng.integers(0, _RISKY_MERCHANTS[0], int(elsewhere.sum()))
    kind = rng.choice(len(_TX_KINDS), size=shape, p=[0.65, 0.2, 0.15])
    forced = np.zeros(shape, dtype=bool)
    draws = rng.random(shape)
    jitter = rng.integers(0, step_ms // 1000, shape) * 1000

    names = [f"acct-{i:05d}" for i in range(n_accounts)]
    counts = {
        "fraud_burst": max(1, round(0.025 * n_accounts)),
        "card_testing": max(1, round(0.015 * n_accounts)),
        "salary_day": max(1, round(0.02 * n_accounts)),
        "spending_shift": max(1, round(0.02 * n_accounts)),
    }
    draws_ = _Draws(mu, rate, log_amount, risk, merchant, kind, forced)
    anomalies = []
    for a, scenario in pick_streams(rng, n_accounts, counts):
        s0, length = _inject(rng, draws_, a, scenario, steps, step_ms)
        benign = scenario in ("salary_day", "spending_shift")
        anomalies.append(window(names[a], slot_ms, s0, s0 + length - 1, step_ms, scenario, benign))

    present = (draws < np.minimum(rate, 0.95)) | forced
    stream_idx, tick = np.nonzero(present)
    amount = np.maximum(np.round(np.exp(log_amount[present]), 2), 0.01)
    columns = Columns(
        streams=names,
        stream_idx=stream_idx.astype(np.int64),
        tick=tick.astype(np.int64),
        ts_ms=slot_ms[tick] + jitter[present],
        values={"amount": amount, "merchant_risk": np.round(risk[present], 3)},
        meta={
            "merchant": (_MERCHANTS, merchant[present].astype(np.int64)),
            "kind": (_TX_KINDS, kind[present].astype(np.int64)),
        },
    )
    return columns.sorted_by_time(), anomalies
