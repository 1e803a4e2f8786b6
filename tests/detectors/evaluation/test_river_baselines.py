"""River baselines: one score in [0, 1] per value, no look-ahead, a spike stands out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.evaluation.replay import replay
from detectors.evaluation.river_baselines import BASELINES, RiverStreams, run_series
from detectors.policy import AlertPolicy

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


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_river_streams_replay_with_the_same_policy(name: str) -> None:
    """Behind the stream-detector interface a baseline scores each stream as its own
    River model would, and the episode policy turns scores into alerts."""
    values = np.array(series(), np.float32)
    other = values[::-1].copy()
    policy = AlertPolicy(threshold=0.5, clear=0.3, quiet_seconds=600)
    streams = RiverStreams(name, policy)
    result = replay(streams, [values[:, None], other[:, None]], ts=[np.arange(600) * 60_000] * 2)
    np.testing.assert_allclose(
        result[0].scores, run_series(BASELINES[name](), series()), 1e-3, 1e-5
    )
    np.testing.assert_allclose(
        result[1].scores, run_series(BASELINES[name](), other.tolist()), 1e-3, 1e-5
    )
    for r in result:
        # an alert opens an episode: never two alerts on consecutive rows at the same score
        fired = np.flatnonzero(r.alerts)
        assert np.all(r.scores[fired] >= policy.threshold)
        assert len(fired) < int((r.scores >= policy.threshold).sum()) or len(fired) <= 1


def test_river_streams_refuse_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        RiverStreams("nope", AlertPolicy())
