"""The error summary: each stream's errors judged against its own, in time units."""

from __future__ import annotations

import math

import numpy as np

from detectors.calibration import (
    FIELDS,
    LIVED,
    SCALE,
    WEIGHT,
    SurpriseParams,
    learn,
    log10_tail,
    restart,
    surprise_score,
)

P = SurpriseParams()


def run(errors: np.ndarray, gap_s: float = 60.0, params: SurpriseParams = P) -> tuple:
    """errors [T, B] -> (scores [T, B], final summary), B streams stepped together."""
    steps, batch = errors.shape
    summary = np.zeros((batch, FIELDS), np.float32)
    scores = np.zeros((steps, batch), np.float32)
    gaps = np.full(batch, gap_s)
    for t in range(steps):
        scores[t] = surprise_score(errors[t], summary, params)
        summary = learn(errors[t], gaps, summary, params)
    return scores, summary


def test_a_fresh_summary_scores_nothing() -> None:
    assert surprise_score(np.array([1e6]), np.zeros((1, FIELDS), np.float32), P)[0] == 0.0


def test_the_same_errors_at_any_scale_score_alike() -> None:
    """An excellent model (errors of 0.01) and a poor one (errors of 1.0): the same relative
    miss means the same, with no absolute floor hiding the small errors."""
    rng = np.random.default_rng(0)
    base = np.abs(rng.normal(size=(3000, 1)))
    errors = base * np.array([[1e-2, 1.0]])
    errors[2500] *= 12.0
    scores, _ = run(errors)
    assert np.abs(scores[:, 0] - scores[:, 1]).max() < 0.01
    assert scores[2500, 0] >= 0.5


def test_gaussian_errors_rarely_reach_the_threshold() -> None:
    rng = np.random.default_rng(1)
    scores, _ = run(np.abs(rng.normal(size=(5000, 20))))
    assert (scores[100:] >= 0.5).mean() < 2e-4


def test_a_heavy_tailed_stream_needs_a_larger_miss_than_a_light_tailed_one() -> None:
    rng = np.random.default_rng(2)
    light = np.abs(rng.normal(size=5000))
    heavy = np.abs(rng.standard_t(1.5, size=5000))
    errors = np.stack([light / light.mean(), heavy / heavy.mean()], axis=1)
    _, summary = run(errors)
    miss = np.array([16.0, 16.0])  # 13 sigma of the Gaussian errors
    scores = surprise_score(miss, summary, P)
    assert scores[0] >= 0.5 > scores[1]


def test_rarity_is_per_event_time_lived() -> None:
    """The same tail probability is more notable on a stream that has lived fewer events:
    p * lived is what the score reads, not p against a fixed return period."""
    summary = np.zeros((2, FIELDS), np.float32)
    summary[:, SCALE], summary[:, WEIGHT] = 0.0, 100.0
    summary[:, 1], summary[:, 2] = 0.05, 0.05 * 0.25  # rate and mean excess
    summary[:, LIVED] = [1_000.0, 100_000.0]
    scores = surprise_score(np.array([20.0, 20.0]), summary, P)
    assert math.isclose(scores[0] - scores[1], 2 * P.per_decade, abs_tol=1e-3)


def test_memories_are_durations_not_event_counts() -> None:
    """A second-rate and an hourly stream with the same errors keep the same summary after
    the same week of event time (the hourly one saw 3600 times fewer events)."""
    ones = np.ones(1)
    fast = learn(ones, np.ones(1), np.zeros((1, FIELDS), np.float32), P)
    slow = fast.copy()
    for _ in range(3600):
        fast = learn(ones, np.ones(1), fast, P)
    slow = learn(ones, np.full(1, 3600.0), slow, P)
    decay_fast, decay_slow = fast[0, LIVED], slow[0, LIVED]
    assert decay_fast > 3000 and decay_slow < 3  # lived events, counted in time
    week = 7 * 86_400.0
    old = np.zeros((1, FIELDS), np.float32)
    old[0, WEIGHT], old[0, LIVED] = 1e6, 1e6
    aged = learn(ones, np.full(1, week), old, P)
    assert math.isclose(aged[0, LIVED], 1e6 * math.exp(-1) + 1, rel_tol=1e-4)


def test_the_tail_is_the_fitted_pareto_one_when_well_measured_and_heavier_when_not() -> None:
    summary = np.zeros((2, FIELDS), np.float32)
    summary[:] = [0.0, 0.1, 0.1 * 0.5, 1e7, 1e7]  # log-scale, rate, mean excess, weight, lived
    summary[1, WEIGHT] = 50.0  # the same fit from 5 exceedances
    at = P.tail_at * 1.0
    # Below the threshold no rarity is claimed; beyond it, with a million exceedances,
    # rate * (e / at) ** (-1 / 0.5); with few, the posterior predictive (1 + x / S) ** -k.
    assert (log10_tail(np.array([1.0, 1.0]), summary, P) == 0.0).all()
    many, few = log10_tail(np.array([10.0, 10.0]), summary, P)
    assert math.isclose(many, math.log10(0.1 * (10.0 / at) ** -2.0), abs_tol=1e-4)
    prior_hits = P.prior_rate * P.prior_events  # the prior rate never decays
    rate = (0.1 * 50.0 + prior_hits) / (50.0 + P.prior_events)
    k, total = 0.1 * 50.0 + P.prior_hits, 0.05 * 50.0 + P.prior_hits * P.prior_excess
    tail = rate * (1 + math.log(10.0 / at) / total) ** -k
    assert math.isclose(few, math.log10(tail), abs_tol=1e-5)
    # Few exceedances: a heavier tail (it falls less from 10 to 100 times the threshold).
    many_far, few_far = log10_tail(np.array([100.0, 100.0]), summary, P)
    assert few - few_far < many - many_far


def test_a_model_swap_makes_the_summary_young_and_keeps_the_lived_count() -> None:
    rng = np.random.default_rng(3)
    _, summary = run(np.abs(rng.normal(size=(2000, 1))))
    young = restart(summary, P)
    assert young[0, WEIGHT] == P.restart_events and young[0, LIVED] == summary[0, LIVED]
    # The new model's errors (ten times smaller) take over within a few hundred events.
    for _ in range(500):
        young = learn(np.abs(rng.normal(size=1)) * 0.1, np.full(1, 60.0), young, P)
    assert young[0, SCALE] < math.log(0.1)  # log(0.33) if the old errors kept their weight


def test_errors_outside_the_tail_mask_set_the_scale_but_not_the_tail() -> None:
    summary = learn(np.ones(2), np.ones(2), np.zeros((2, FIELDS), np.float32), P)
    outlier = np.array([50.0, 50.0])
    after = learn(outlier, np.ones(2), summary, P, tail=np.array([True, False]))
    assert after[0, 1] > summary[0, 1] and after[0, 2] > summary[0, 2]  # rate, excess
    assert after[1, 1] == summary[1, 1] and after[1, 2] == summary[1, 2]
    assert after[1, SCALE] == after[0, SCALE] and after[1, LIVED] == after[0, LIVED]
