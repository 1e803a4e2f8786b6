"""A stream's values -> the model's inputs: running normalisation, as serving and training
compute it (training replays it step by step, so the model learns on what it will get).
"""

from __future__ import annotations

import numpy as np


def spread(var: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Spread used to normalise; floored so a flat line does not divide by zero."""
    return np.sqrt(np.maximum(var, 0.0)) + 1e-6 + 1e-4 * np.abs(mean)


def normalise(
    x: np.ndarray,
    mask: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    count: np.ndarray,
    clip: float,
) -> np.ndarray:
    """x in the stream's units -> z, using statistics from before x (first event -> 0).

    Clipped to +-clip: the model's input must stay in the range it was trained on.
    """
    return np.clip(surprise(x, mask, mean, var, count), -clip, clip).astype(np.float32)


def surprise(
    x: np.ndarray, mask: np.ndarray, mean: np.ndarray, var: np.ndarray, count: np.ndarray
) -> np.ndarray:
    """z before clipping (bounded only against overflow): the error is measured on this, so
    a 200-sigma jump counts as more evidence than a 10-sigma one."""
    z = (x - mean) / spread(var, mean)
    z = np.where((count == 0)[:, None], 0.0, z)
    return (np.clip(z, -1e3, 1e3) * mask).astype(np.float32)


def update_stats(
    x: np.ndarray,
    mask: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    count: np.ndarray,
    min_alpha: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Exponentially weighted mean/variance: exact averages at first, then slowly adapting."""
    alpha = np.maximum(1.0 / (count.astype(np.float64) + 1.0), min_alpha)[:, None]
    delta = x - mean
    new_mean = np.where(mask, mean + alpha * delta, mean)
    new_var = np.where(mask, (1.0 - alpha) * (var + alpha * delta * delta), var)
    first = (count == 0)[:, None]
    new_mean = np.where(first & mask, x, new_mean)
    new_var = np.where(first & mask, 0.0, new_var)
    return new_mean.astype(np.float32), new_var.astype(np.float32)
