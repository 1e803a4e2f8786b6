"""Scoring calibration: the score means the same on every stream, and settles after a change."""

from __future__ import annotations

import numpy as np

from detectors.scoring import (
    NoveltyParams,
    ScoringParams,
    peak_gate,
    range_score,
    score_errors,
    update_range,
)


def score_stream(errors: np.ndarray, params: ScoringParams | None = None) -> np.ndarray:
    """errors [T, B] -> scores [T, B], stepping B streams together as the detector does."""
    p = params or ScoringParams()
    steps, batch = errors.shape
    short = np.zeros(batch, np.float32)
    mean = np.zeros(batch, np.float32)
    var = np.zeros(batch, np.float32)
    out = np.zeros((steps, batch), np.float32)
    for t in range(steps):
        count = np.full(batch, t)
        out[t], short, mean, var = score_errors(errors[t], count, short, mean, var, p)
    return out


def test_noise_streams_of_any_scale_rarely_reach_the_threshold() -> None:
    rng = np.random.default_rng(1)
    scales = np.array([0.01, 1.0, 100.0, 1e5])
    errors = np.abs(rng.normal(size=(5000, 4))) * scales
    scores = score_stream(errors)[200:]
    assert (scores >= 0.5).mean() < 1e-3
    # The same noise at different scales scores alike: calibrated per stream.
    assert np.allclose(np.median(scores, axis=0), np.median(scores[:, 1]), atol=0.02)


def test_a_spike_scores_near_one() -> None:
    rng = np.random.default_rng(2)
    errors = np.abs(rng.normal(size=(1000, 1)))
    errors[800] = 40.0
    scores = score_stream(errors)
    assert scores[800, 0] > 0.9
    assert scores[700:790, 0].max() < 0.5


def test_after_a_level_shift_scores_return_below_the_threshold() -> None:
    """A new, permanently larger error level alerts, then becomes the stream's normal."""
    rng = np.random.default_rng(3)
    errors = np.abs(rng.normal(size=(6000, 1)))
    errors[3000:] *= 4.0
    scores = score_stream(errors)[:, 0]
    assert scores[3000:3020].max() >= 0.5
    back = 3000 + int(np.argmax(scores[3000:] < 0.5))
    assert (scores[back + 2000 :] < 0.5).mean() > 0.999


def test_range_score_is_half_at_the_margin_and_one_past_margin_plus_scale() -> None:
    p = NoveltyParams(margin=0.05, scale=0.1, ready=10)
    low, high = np.zeros((4, 1), np.float32), np.full((4, 1), 100.0, np.float32)
    x = np.array([[50.0], [105.0], [-15.0], [104.0]], np.float32)
    mask = np.ones((4, 1), bool)
    score = range_score(x, mask, low, high, np.full(4, 10), p)
    np.testing.assert_allclose(score, [0.0, 0.5, 1.0, 0.0], atol=1e-6)
    # Not before `ready` events, and not on a feature slot the stream does not use.
    assert range_score(x, mask, low, high, np.full(4, 9), p).max() == 0.0
    assert range_score(x, ~mask, low, high, np.full(4, 10), p).max() == 0.0


def test_range_score_takes_the_most_novel_feature() -> None:
    p = NoveltyParams(margin=0.0, scale=1.0, ready=0)
    low, high = np.zeros((1, 2), np.float32), np.ones((1, 2), np.float32)
    x = np.array([[0.5, 1.5]], np.float32)
    score = range_score(x, np.ones((1, 2), bool), low, high, np.ones(1), p)
    np.testing.assert_allclose(score, [0.75])


def test_the_running_range_starts_at_the_first_value_and_only_widens() -> None:
    low, high = np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32)
    mask = np.array([[True, False]])
    seen = []
    for count, value in enumerate([5.0, 7.0, 6.0, 3.0]):
        x = np.array([[value, 99.0]], np.float32)
        low, high = update_range(x, mask, low, high, np.array([count]))
        seen.append((float(low[0, 0]), float(high[0, 0])))
    assert seen == [(5.0, 5.0), (5.0, 7.0), (5.0, 7.0), (3.0, 7.0)]
    assert low[0, 1] == high[0, 1] == 0.0  # an unused slot keeps its zeros


def test_a_trend_never_overshoots_its_range_but_a_jump_does() -> None:
    p = NoveltyParams()
    values = np.concatenate([np.arange(500.0), [499.0 + 0.2 * 499]])  # then +20% of range
    low = high = np.zeros((1, 1), np.float32)
    scores = []
    for count, value in enumerate(values):
        x = np.array([[value]], np.float32)
        scores.append(
            float(range_score(x, np.ones((1, 1), bool), low, high, np.array([count]), p)[0])
        )
        low, high = update_range(x, np.ones((1, 1), bool), low, high, np.array([count]))
    assert max(scores[:-1]) == 0.0
    assert scores[-1] == 1.0


def test_peak_gate_mutes_excursions_no_larger_than_a_recent_one() -> None:
    score = np.ones(3, np.float32)
    value = np.array([1.0, 2.0, 2.0], np.float32)
    peak = np.array([2.0, 2.0, 0.0], np.float32)
    gated, new_peak = peak_gate(score, value, peak, ratio=0.8, memory=10.0)
    np.testing.assert_array_equal(gated, [0.0, 1.0, 1.0])
    np.testing.assert_allclose(new_peak, [1.8, 2.0, 2.0])
    # The peak decays, so the same excursion counts again once enough time has passed.
    peak = np.array([2.0], np.float32)
    for _ in range(10):
        _, peak = peak_gate(np.zeros(1, np.float32), np.zeros(1, np.float32), peak, 0.8, 10.0)
    assert peak_gate(np.ones(1, np.float32), np.ones(1, np.float32), peak, 0.8, 10.0)[0][0] == 1.0
