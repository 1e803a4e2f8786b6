"""Scoring calibration: the score means the same on every stream, and settles after a change."""

from __future__ import annotations

import numpy as np

from detectors.scoring import ScoringParams, score_errors


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


def test_channels_are_scored_each_against_their_own_statistics() -> None:
    """[B, C] statistics: channel c behaves exactly like a one-channel run with alpha c."""
    rng = np.random.default_rng(4)
    errors = np.abs(rng.normal(size=(300, 2)))
    errors[250] = 30.0
    p = ScoringParams()
    alphas = np.array([0.25, 1.0], np.float32)
    decades = np.array([12.0, 36.0])
    short, mean, var = (np.zeros((2, 2), np.float32) for _ in range(3))
    singles = [tuple(np.zeros(2, np.float32) for _ in range(3)) for _ in range(2)]
    for t in range(300):
        count = np.full(2, t)
        score, short, mean, var = score_errors(
            errors[t], count, short, mean, var, p, alphas, decades
        )
        for c in range(2):
            s, m, v = singles[c]
            one, s, m, v = score_errors(errors[t], count, s, m, v, p, alphas[c], decades[c])
            singles[c] = (s, m, v)
            np.testing.assert_allclose(score[:, c], one, atol=1e-6)
    assert score.shape == (2, 2)
