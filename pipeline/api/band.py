"""The expected band drawn around a stream's predictions.

The model predicts one value per feature, not an interval, so the band is derived from
how wrong the predictions have recently been: for each point, the spread is a robust
estimate of the residual's standard deviation over the `window` points *before* it,

    sigma_t = 1.4826 * median(|value_i - expected_i|, i in [t - window, t))

(1.4826 turns the median absolute residual into sigma for zero-centred normal errors),
and the band is `expected_t ± k * sigma_t`. A median ignores the spikes themselves, and
using only earlier points means a spike never widens its own band. Points with fewer than
`min_points` earlier residuals get no band.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

BAND_K = 3.0
BAND_WINDOW = 64
BAND_MIN_POINTS = 8
MAD_TO_SIGMA = 1.4826


def expected_band(
    values: np.ndarray,
    expected: np.ndarray,
    k: float = BAND_K,
    window: int = BAND_WINDOW,
    min_points: int = BAND_MIN_POINTS,
) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) for 1-D arrays of values and predictions; NaN where there is none."""
    values = np.asarray(values, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    n = len(values)
    residuals = np.abs(values - expected)  # NaN wherever the prediction is missing
    padded = np.concatenate([np.full(window, np.nan), residuals])
    trailing = sliding_window_view(padded, window)[:n]  # row t = residuals[t-window : t]
    enough = np.isfinite(trailing).sum(axis=1) >= min_points
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: masked just below
        sigma = MAD_TO_SIGMA * np.nanmedian(trailing, axis=1) if n else np.zeros(0)
    sigma = np.where(enough, sigma, np.nan)
    return expected - k * sigma, expected + k * sigma
