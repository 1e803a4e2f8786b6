"""Synthetic training series for the generic model shipped with Vigil.

A fresh install has no history to train on, yet must give useful scores at once. So the
shipped model is trained (by `detectors.training.train`, the same code `vigil train` runs) on a
broad family of generated series covering what metric, sensor and transaction streams
look like: several seasonal periods, trends, random walks, level shifts, spikes, flat
and stuck segments, counts, square waves, and correlated multivariate channels. No
benchmark file is used, so evaluation on NAB stays honest.
"""

from __future__ import annotations

import numpy as np


def _seasonal(rng: np.random.Generator, n: int, t: np.ndarray) -> np.ndarray:
    period = rng.choice([12, 24, 48, 96, 144, 288])
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    amp = rng.uniform(0.0, 2.0, size=(n, 1))
    shape = np.sin(2 * np.pi * t / period + phase)
    harmonics = rng.uniform(0, 0.5, size=(n, 1)) * np.sin(4 * np.pi * t / period + 2 * phase)
    return amp * (shape + harmonics)


def _events(rng: np.random.Generator, n: int, length: int, base: np.ndarray) -> np.ndarray:
    """Add level shifts, spikes and flat (stuck) segments at random places."""
    out = base.copy()
    for i in range(n):
        kind = rng.random()
        if kind < 0.3:
            at = rng.integers(length // 4, length)
            out[i, at:] += rng.normal(0, 3)
        if rng.random() < 0.3:
            spikes = rng.integers(0, length, size=rng.integers(1, 4))
            out[i, spikes] += rng.normal(0, 6, size=len(spikes))
        if rng.random() < 0.15:
            start = rng.integers(0, length - 10)
            stop = min(length, start + rng.integers(5, length // 3))
            out[i, start:stop] = out[i, start]
    return out


def generate_series(n: int, length: int, seed: int = 0) -> np.ndarray:
    """n univariate series of `length` steps in their own (arbitrary) units -> [n, length]."""
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)[None, :]
    level = rng.normal(0, 50, size=(n, 1))
    scale = np.exp(rng.uniform(-3, 5, size=(n, 1)))
    trend = rng.normal(0, 0.004, size=(n, 1)) * t * (rng.random((n, 1)) < 0.3)
    walk = np.cumsum(rng.normal(0, 0.15, size=(n, length)), axis=1) * (rng.random((n, 1)) < 0.3)
    noise = rng.normal(0, 1, size=(n, length)) * rng.uniform(0.02, 1.0, size=(n, 1))
    ar = np.zeros((n, length))
    phi = rng.uniform(0, 0.95, size=n)
    for k in range(1, length):
        ar[:, k] = phi * ar[:, k - 1] + noise[:, k]
    base = _seasonal(rng, n, t) + trend + walk + ar
    square = rng.random((n, 1)) < 0.1
    period = rng.integers(10, 100)
    base = np.where(square, np.sign(np.sin(2 * np.pi * t / period)) + 0.1 * noise, base)
    base = _events(rng, n, length, base)
    counts = rng.random((n, 1)) < 0.15
    series = level + scale * base
    series = np.where(counts, rng.poisson(np.clip(np.abs(base) * 3 + 1, 0, 1e6)), series)
    return series.astype(np.float32)


def generate_corpus(
    n: int, length: int, max_features: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Mixed univariate and correlated multivariate series -> (values [n, T, F], mask [n, T, F])."""
    rng = np.random.default_rng(seed)
    values = np.zeros((n, length, max_features), dtype=np.float32)
    mask = np.zeros((n, length, max_features), dtype=bool)
    n_feats = np.where(rng.random(n) < 0.6, 1, rng.integers(1, max_features + 1, size=n))
    common = generate_series(n, length, seed + 1)
    for f in range(max_features):
        own = generate_series(n, length, seed + 2 + f)
        weight = rng.uniform(0, 1, size=(n, 1))
        mixed = weight * common / (np.std(common, axis=1, keepdims=True) + 1e-6) + own
        values[:, :, f] = np.where(f == 0, common, mixed).astype(np.float32)
        mask[:, :, f] = (f < n_feats)[:, None]
    return np.where(mask, values, 0.0).astype(np.float32), mask
