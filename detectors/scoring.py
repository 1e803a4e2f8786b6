"""Prediction error -> calibrated anomaly score in [0, 1].

The raw error of a forecaster means different things on different streams (a noisy series
always has large errors). So, like Numenta's anomaly likelihood, each stream keeps the
distribution of its *own* recent error: a short-term average of the error is compared with
the long-term mean and spread of that average, and the score is the Gaussian tail
probability of the short-term average, put on a log scale:

    score = min(1, -log10(P(tail)) / decades)

With the default 12 decades, 0.5 means "a recent error this large happens once in a million
events on this stream" on every stream, and one threshold works everywhere. Twelve, not ten:
prediction errors have heavier tails than a Gaussian, and on the NAB development split the
policy's default threshold 0.5 on this scale is the one the threshold sweep itself picks
(0.5 on a 10-decade scale fired too often on bursty streams such as tweet counts).

All functions are pure and vectorised over a batch of streams (numpy arrays in, arrays out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


def log_tail_probability(z: np.ndarray) -> np.ndarray:
    """log P(Z >= z) for a standard normal, accurate far into the tail."""
    return torch.special.log_ndtr(torch.from_numpy(-np.asarray(z, dtype=np.float64))).numpy()


@dataclass(frozen=True)
class ScoringParams:
    short_alpha: float = 0.25  # EW weight of the newest error in the short-term average
    long_min_alpha: float = 1.0 / 2000  # slowest EW weight of the long-term error statistics
    min_sigma: float = 0.02  # floor on the error spread, in normalised units
    rel_sigma: float = 0.1  # and relative to the mean error, so flat lines don't explode
    settle: int = 16  # first errors of a stream, dominated by normalisation start-up: not learned
    decades: float = 12.0  # score 1.0 = a tail probability of 10**-decades


def score_errors(
    errors: np.ndarray,
    count: np.ndarray,
    err_short: np.ndarray,
    err_mean: np.ndarray,
    err_var: np.ndarray,
    params: ScoringParams,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One scoring step for B streams -> (score, err_short, err_mean, err_var).

    The score compares the new short-term average with the statistics from *before* this
    event, so an anomaly cannot hide itself by inflating the spread it is measured against.
    """
    first = count <= params.settle
    short = np.where(first, errors, err_short + params.short_alpha * (errors - err_short))
    sigma = np.sqrt(np.maximum(err_var, 0.0))
    sigma = np.maximum(sigma, np.maximum(params.min_sigma, params.rel_sigma * err_mean))
    z = (short - err_mean) / sigma
    score = np.clip(-log_tail_probability(z) / (params.decades * math.log(10.0)), 0.0, 1.0)
    alpha = np.maximum(1.0 / np.maximum(count - params.settle, 1), params.long_min_alpha)
    delta = short - err_mean
    new_mean = err_mean + alpha * delta
    new_var = (1.0 - alpha) * (err_var + alpha * delta * delta)
    new_mean = np.where(first, short, new_mean)
    new_var = np.where(first, 0.0, new_var)
    return (
        score.astype(np.float32),
        short.astype(np.float32),
        new_mean.astype(np.float32),
        new_var.astype(np.float32),
    )
