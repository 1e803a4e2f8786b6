"""The model's prediction error -> how rare it is for *this* stream, per event time lived.

A forecaster's error means nothing on its own: 0.05 (in normalised units) is a huge miss
for a model that predicts a smooth physical signal to 0.005 and nothing at all for one
that predicts tweet counts to 0.5. So each stream keeps a compact summary of its own
recent errors and an error is judged against that summary alone, with no absolute floor
that would hide a good model's errors:

- ``scale``: the time-decayed mean of the log-error, the stream's "usual" error (a
  geometric mean: one huge start-up error does not move it for days, as it would move
  a mean);
- a peaks-over-threshold tail: above ``tail_at`` x scale, the excess of the log-error is
  taken as exponential (a Pareto tail of the error itself), fitted from the fraction of
  errors beyond the threshold (``rate``) and their mean log-excess (``excess``): the same
  "5x the usual error" is very rare on a stream whose errors have a light tail and
  ordinary on a bursty stream whose errors have a heavy one. The tail is the posterior
  predictive one, not the point fit: with k exceedances (the prior's included) whose
  log-excesses sum to S, P(log-excess >= x) = (1 + x / S) ** -k (an exponential whose
  rate has the Gamma posterior of k observations). With many exceedances that is the fitted
  exponential; with few (an hourly stream's week, or right after a model swap) it is
  heavier, so an uncertain tail errs towards silence instead of alerting on its noise;
- a prior (``prior_*``) that never decays: the exceedance rate is worth ``prior_events``
  errors (a stream that has not crossed its threshold in a week has a rate of about
  one in the week's events, not zero), and the tail's shape ``prior_hits`` exceedances of
  an index-2 Pareto tail, heavier than any Gaussian's, so a young stream errs towards
  silence; its own errors outweigh the prior as they come.

Rarity is then put per unit of event time the stream has lived: ``lived`` counts the
stream's events with the same time decay (``memory_seconds``), so p * lived is how many
errors at least this large the stream's own history within the memory would have shown.
The score is 0.5 (the alert threshold) where that expectation is ``expected``, and moves
0.1 per factor of ten (the policy's escalation step): on a stationary stream alerts come
at about ``expected`` per memory, whether it sends an event a second or one an hour.

Every memory is a duration: the decay per event is exp(-gap / memory_seconds). A new model
version makes different errors, so on a model swap the summary is made young again
(``restart_events``): the new model's errors replace the old ones' within minutes, not
days (`restart`), while ``lived`` carries on.

Pure and vectorised over a batch of streams; the summary is ``FIELDS`` float32 per stream,
all zeros for a stream that has made no error yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: The summary's columns in a stream's state record.
SCALE, RATE, EXCESS, WEIGHT, LIVED = range(5)
FIELDS = 5


@dataclass(frozen=True)
class SurpriseParams:
    # How long the stream's own error distribution remembers (seconds): a week of errors.
    memory_seconds: float = 7 * 86_400.0
    # Tail threshold, a multiple of the usual (geometric mean) error. 4.5 times the
    # geometric mean of a Gaussian error's size is 2.4 sigma: beyond it lie 1.6% of a
    # Gaussian stream's errors, a day of minute data gives ~20 to fit the tail on, and the
    # Pareto tail fitted there is only mildly conservative for light-tailed (Gaussian)
    # errors; a lower threshold makes it much more so (the Gaussian's local Pareto index
    # grows with the threshold).
    tail_at: float = 4.5
    prior_rate: float = 0.02  # prior fraction of errors beyond the threshold
    prior_excess: float = 0.5  # prior mean log-excess (nats): an index-2 Pareto tail
    prior_events: float = 16.0  # how many errors the prior rate is worth
    prior_hits: float = 2.0  # how many exceedances the prior tail shape is worth
    # Errors below this fraction of the stream's usual error count as that much: an error a
    # thousand times smaller than usual says nothing about the tail, and log(0) (a perfect
    # prediction of a flat line) must not reach the statistics. Relative to the stream's own
    # scale, so it hides nothing on a stream whose model is excellent.
    resolution: float = 1e-3
    # Score 0.5 where the stream's lived history would show this many errors at least as
    # large: the alerts per memory (a week) this channel raises on a stationary stream
    # whose tail it has measured. Small, because the product's budget is about one false
    # alert per stream-week for all channels together, and a young stream spends
    # expected x ln(events per memory / warm-up) more of it in its first week.
    expected: float = 0.02
    per_decade: float = 0.1  # score per factor of ten rarer (the policy's escalate_by)
    restart_events: float = 64.0  # what the summary weighs right after a model swap

    def __post_init__(self) -> None:
        if self.memory_seconds <= 0 or self.tail_at <= 1 or self.expected <= 0:
            raise ValueError("memory_seconds > 0, tail_at > 1 and expected > 0 required")


def log10_tail(error: np.ndarray, summary: np.ndarray, params: SurpriseParams) -> np.ndarray:
    """log10 P(an error >= error) for each stream, from its summary before this error.

    Only the tail is modelled: an error at or below the threshold claims no rarity (0, a
    probability of 1), so a stream that has hardly ever crossed its threshold is not
    called rare for errors it makes all the time."""
    weight = summary[:, WEIGHT]  # the errors the statistics average
    hits = summary[:, RATE] * weight  # the exceedances among them
    rate = (hits + params.prior_rate * params.prior_events) / (weight + params.prior_events)
    k = hits + params.prior_hits
    total = summary[:, EXCESS] * weight + params.prior_hits * params.prior_excess  # S
    over = np.log(np.maximum(error, 1e-30) / params.tail_at) - summary[:, SCALE]
    log_p = np.log(rate) - k * np.log1p(np.maximum(over, 0.0) / total)
    return np.asarray(np.where(over > 0, log_p, 0.0) / math.log(10.0))


def surprise_score(error: np.ndarray, summary: np.ndarray, params: SurpriseParams) -> np.ndarray:
    """Errors [B] against each stream's summary -> score [B] in [0, 1] (see the module).

    A stream with no error learnt yet (a fresh summary is all zeros) scores 0."""
    lived = np.log10(summary[:, LIVED] + 1.0)
    log_expected = log10_tail(error, summary, params) + lived
    score = 0.5 + params.per_decade * (math.log10(params.expected) - log_expected)
    score = np.where(summary[:, WEIGHT] > 0, np.clip(score, 0.0, 1.0), 0.0)
    return score.astype(np.float32)


def learn(
    error: np.ndarray,
    gap_s: np.ndarray,
    summary: np.ndarray,
    params: SurpriseParams,
    tail: np.ndarray | None = None,
) -> np.ndarray:
    """Take each stream's new error (after `gap_s` seconds since its previous one) into its
    summary -> new summary. The threshold is the one the error was scored against.

    A fresh summary is all zeros (so a state record needs no parameters to be made); its
    first error sets the scale and is not a tail sample. Where
    `tail` [B] is False the error counts towards the scale and the lived events but not
    the tail (a stream's warm-up errors come from its normalisation settling, and one
    start-up outlier would otherwise set its tail for a week)."""
    decay = np.exp(-np.maximum(gap_s, 0.0) / params.memory_seconds)
    weight = summary[:, WEIGHT] * decay + 1.0
    a = 1.0 / weight  # exact averages while young, then a memory of memory_seconds
    first = summary[:, WEIGHT] == 0
    log_e = np.log(np.maximum(error, 1e-30))
    log_e = np.where(
        first, log_e, np.maximum(log_e, summary[:, SCALE] + math.log(params.resolution))
    )
    scale = np.where(first, log_e, summary[:, SCALE] + a * (log_e - summary[:, SCALE]))
    over = np.where(first, 0.0, log_e - np.log(params.tail_at) - summary[:, SCALE])
    hit = (over > 0).astype(np.float64)
    a_tail = a if tail is None else np.where(tail, a, 0.0)
    rate, excess = summary[:, RATE], summary[:, EXCESS]
    new = np.empty_like(summary)
    new[:, SCALE] = scale
    new[:, RATE] = rate + a_tail * (hit - rate)
    new[:, EXCESS] = excess + a_tail * (np.maximum(over, 0.0) - excess)
    new[:, WEIGHT] = weight
    new[:, LIVED] = summary[:, LIVED] * decay + 1.0
    return new


def restart(summary: np.ndarray, params: SurpriseParams) -> np.ndarray:
    """Summaries of streams whose model changed: the old errors weigh as `restart_events`,
    so the new model's errors take over quickly; the lived count is kept."""
    new = summary.copy()
    new[:, WEIGHT] = np.minimum(new[:, WEIGHT], params.restart_events)
    return new
