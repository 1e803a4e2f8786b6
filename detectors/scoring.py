"""Prediction error -> calibrated anomaly score in [0, 1].

The raw error of a forecaster means different things on different streams (a noisy series
always has large errors). So, like Numenta's anomaly likelihood, each stream keeps the
distribution of its *own* recent error: a short-term average of the error is compared with
the long-term mean and spread of that average, and the score is the Gaussian tail
probability of the short-term average, put on a log scale:

    score = min(1, -log10(P(tail)) / decades)

With the default 15 decades, 0.5 means "a recent error this large happens once in 10**7.5
events on this stream" on every stream, and one threshold works everywhere. More decades
than a Gaussian would need, because prediction errors have heavier tails than a Gaussian
(bursty streams such as tweet counts), and the running-range channel (`range_score`)
catches the slow climbs to new levels the error channels cannot see.

This judges a run of errors (the short-term average, weight 0.15); the newest error alone is
judged by `detectors.calibration`, against the stream's own error distribution.

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
    # Slowest EW weight of the long-term error statistics: a long memory, so a burst of
    # large errors is judged against about a month of 5-minute errors, not only two weeks
    # (1/4000 let bursty streams forget their previous bursts and re-alert on each one).
    long_min_alpha: float = 1.0 / 8000
    min_sigma: float = 0.02  # floor on the error spread, in normalised units
    rel_sigma: float = 0.1  # and relative to the mean error, so flat lines don't explode
    settle: int = 16  # first errors of a stream, dominated by normalisation start-up: not learned
    decades: float = 15.0  # score 1.0 = a tail probability of 10**-decades


def score_errors(
    errors: np.ndarray,
    count: np.ndarray,
    err_short: np.ndarray,
    err_mean: np.ndarray,
    err_var: np.ndarray,
    params: ScoringParams,
    alpha: float | None = None,
    decades: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One scoring step for B streams -> (score, err_short, err_mean, err_var).

    errors and the statistics [B]; the average's weight `alpha` defaults to
    params.short_alpha, the log scale `decades` to params.decades.

    The score compares the new short-term average with the statistics from *before* this
    event, so an anomaly cannot hide itself by inflating the spread it is measured against.
    """
    a = params.short_alpha if alpha is None else alpha
    first = count <= params.settle
    short = np.where(first, errors, err_short + a * (errors - err_short))
    sigma = np.sqrt(np.maximum(err_var, 0.0))
    sigma = np.maximum(sigma, np.maximum(params.min_sigma, params.rel_sigma * err_mean))
    z = (short - err_mean) / sigma
    scale = params.decades if decades is None else decades
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


@dataclass(frozen=True)
class NoveltyParams:
    """The range channel: a value beyond anything the stream has shown so far.

    A recurrent forecaster judges each step against the last few, so a slow climb to a
    level the stream has never reached (a new traffic record, a temperature above every
    past reading) makes no large one-step error. The stream's running minimum and maximum
    (since its first event, in its own units; never a series' global range, which would be
    look-ahead) see it: a value more than `margin` of the range beyond either end is new.
    Scored in proportion to the overshoot, so the score keeps its meaning of "how alert-
    worthy": exactly `margin` beyond the range is 0.5 (the default alert threshold), and
    `margin + scale` beyond it is 1. A steady trend pushes the range along one step at a
    time and never overshoots it by a margin, so a trending stream does not fire.
    """

    margin: float = 0.03  # of the range
    scale: float = 0.05  # further overshoot (of the range) from score 0.5 to 1
    # Events before the range is trusted: a young stream sets records all the time (an iid
    # stream's n-th value is a new extreme with probability 2 / n, and heavy-tailed ones,
    # such as transaction amounts, overshoot by a margin often).
    ready: int = 450
    # Off: the range is still kept (so turning it on later has the whole history), it
    # just never scores. For streams whose new records are routine rather than news.
    enabled: bool = True


def range_score(
    x: np.ndarray,
    mask: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    count: np.ndarray,
    params: NoveltyParams,
) -> np.ndarray:
    """x [B, F] against each stream's range so far [B, F] -> score [B] (largest feature).

    Uses the range from *before* x, so a value cannot widen the range it is judged by.
    """
    if not params.enabled:
        return np.zeros(len(x), dtype=np.float32)
    width = np.maximum(high - low, 1e-6 + 1e-4 * np.abs(high))
    overshoot = np.maximum(x - high, low - x) / width - params.margin
    score = np.where(overshoot >= 0.0, 0.5 + 0.5 * overshoot / params.scale, 0.0)
    score = (np.clip(score, 0.0, 1.0) * mask).max(axis=1)
    return np.where(count >= params.ready, score, 0.0).astype(np.float32)


def update_range(
    x: np.ndarray, mask: np.ndarray, low: np.ndarray, high: np.ndarray, count: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Widen each stream's running range to take x [B, F] -> (low, high); the first event
    sets it (a fresh state's zeros are not a value the stream has shown)."""
    first = (count == 0)[:, None]
    new_low = np.where(first, x, np.minimum(low, x))
    new_high = np.where(first, x, np.maximum(high, x))
    return (
        np.where(mask, new_low, low).astype(np.float32),
        np.where(mask, new_high, high).astype(np.float32),
    )


def peak_gate(
    score: np.ndarray, value: np.ndarray, peak: np.ndarray, ratio: float, memory: float
) -> tuple[np.ndarray, np.ndarray]:
    """Zero the score where `value` is below `ratio` of its recent peak -> (score, new peak).

    The peak decays by 1 / memory per event (it halves in about 0.7 memory events), so an
    excursion no larger than one the stream made days ago is not news however rare it is
    in the Gaussian sense; a larger one, or the first after a long quiet spell, still is.
    """
    gated = np.where(value > ratio * peak, score, 0.0).astype(np.float32)
    new_peak = np.maximum(peak * (1.0 - 1.0 / memory), value).astype(np.float32)
    return gated, new_peak
