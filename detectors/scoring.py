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

Besides this short-term average (weight 0.15), `extra_alphas` score further averages of the
same error against their own statistics (by default the newest error alone, so one large
spike counts even when the average dilutes it) and the score is the largest of them.

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
    short_alpha: float = 0.15  # EW weight of the newest error in the short-term average
    # Further averages of the same error, each scored against its own long-term statistics
    # (1.0 = the newest error alone: a single spike; small = a sustained change).
    # At most 2 (the state keeps room for two). The score is the largest of all channels.
    extra_alphas: tuple[float, ...] = (1.0,)
    # Their scales: a lone error has much heavier tails than an average, so it needs a far
    # rarer Gaussian tail (48 decades) to count as much (with the detector's asinh-
    # compressed errors; 24 or 36 scored worse on NAB dev).
    extra_decades: tuple[float, ...] = (48.0,)
    # Slowest EW weight of the long-term error statistics: a long memory, so a burst of
    # large errors is judged against about a month of 5-minute errors, not only two weeks
    # (1/4000 let bursty streams forget their previous bursts and re-alert on each one).
    long_min_alpha: float = 1.0 / 8000
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
    alpha: float | np.ndarray | None = None,
    decades: float | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One scoring step for B streams -> (score, err_short, err_mean, err_var).

    errors [B]; the statistics are [B] (one average, weight `alpha`, default
    params.short_alpha) or [B, C] for C averages at once (alpha [C]), scored each.

    The score compares the new short-term average with the statistics from *before* this
    event, so an anomaly cannot hide itself by inflating the spread it is measured against.
    """
    a = params.short_alpha if alpha is None else np.asarray(alpha, dtype=np.float32)
    if err_short.ndim == 2:
        errors, count = errors[:, None], count[:, None]
    first = count <= params.settle
    short = np.where(first, errors, err_short + a * (errors - err_short))
    sigma = np.sqrt(np.maximum(err_var, 0.0))
    sigma = np.maximum(sigma, np.maximum(params.min_sigma, params.rel_sigma * err_mean))
    z = (short - err_mean) / sigma
    scale = params.decades if decades is None else np.asarray(decades, dtype=np.float64)
    score = np.clip(-log_tail_probability(z) / (scale * math.log(10.0)), 0.0, 1.0)
    alpha_long = np.maximum(1.0 / np.maximum(count - params.settle, 1), params.long_min_alpha)
    delta = short - err_mean
    new_mean = err_mean + alpha_long * delta
    new_var = (1.0 - alpha_long) * (err_var + alpha_long * delta * delta)
    new_mean = np.where(first, short, new_mean)
    new_var = np.where(first, 0.0, new_var)
    return (
        score.astype(np.float32),
        short.astype(np.float32),
        new_mean.astype(np.float32),
        new_var.astype(np.float32),
    )
