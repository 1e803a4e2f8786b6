"""River baselines: one score in [0, 1] per value, no look-ahead, a spike stands out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.evaluation.river_baselines import BASELINES, run_series

SPIKE = 520


def series() -> list[float]:
    """A noisy daily-ish cycle with one spike; seeded so the test is deterministic."""
    rng = np.random.default_rng(7)
    t = np.arange(600)
    values = 50 + 5 * np.sin(2 * np.pi * t / 48) + rng.normal(0, 1, len(t))
    values[SPIKE] += 40
    return values.tolist()


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_scores_are_finite_and_in_unit_range(name: str) -> None:
    scores = run_series(BASELINES[name](), series())
    assert scores.shape == (600,)
    assert np.all(np.isfinite(scores))
    assert scores.min() >= 0.0
    assert scores.max() <= 1.0


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_spike_scores_higher_than_normal_rows(name: str) -> None:
    scores = run_series(BASELINES[name](), series())
    normal = scores[300:SPIKE]
    assert scores[SPIKE] > np.quantile(normal, 0.95)
    assert scores[SPIKE] > np.median(normal)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_no_look_ahead(name: str) -> None:
    """A prefix scores the same whether or not the rest of the series exists."""
    values = series()
    whole = run_series(BASELINES[name](), values)
    prefix = run_series(BASELINES[name](), values[: SPIKE + 1])
    np.testing.assert_array_equal(prefix, whole[: SPIKE + 1])


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_each_call_builds_a_fresh_detector(name: str) -> None:
    first, second = BASELINES[name](), BASELINES[name]()
    assert first is not second
    run_series(first, series())
    np.testing.assert_array_equal(
        run_series(second, series()), run_series(BASELINES[name](), series())
    )


@pytest.mark.parametrize("name", sorted(BASELINES))
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_values_are_refused(name: str, bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        BASELINES[name]().step(bad)


def test_huge_magnitudes_stay_finite() -> None:
    """NAB has series around 1e8 next to series around 0.1; neither may break a baseline."""
    values = (np.array(series()) * 1e7).tolist()
    for factory in BASELINES.values():
        scores = run_series(factory(), values)
        assert np.all(np.isfinite(scores))
        assert scores[SPIKE] > np.quantile(scores[300:SPIKE], 0.95)
