"""The direct H-step prediction's evidence: the arriving value against what the model
predicted for it H events ago.

The forecaster's horizon head (`detectors.forecaster`) predicts, at every event, the
value H events ahead as a location and a scale. A stream keeps its last H such
predictions in a ring (`ahead`, float16 locations; `ahead_scale`, log-scales in tenths
as int8, so a univariate record stays under 1 KiB), oldest first: the oldest is the
prediction for the event arriving now. The event's horizon surprise is
u = |z - location| / scale, averaged over the feature slots the stream uses; its rarity for
this stream is judged like the one-step error's (`detectors.calibration`, its own summary),
but as e^u (`as_error`): the calibration fits a Pareto tail to the errors it sees, right for
errors whose logarithm has an exponential tail. A scale-free surprise of a model whose scale
is right has about an exponential (Laplace) or lighter (Gaussian) tail itself, so u would
be fitted a tail far heavier than it has, and only an error many scales off would score.

A model swap re-warms the hidden state but cannot rebuild the predictions of the last H
events, so it marks them missing (`invalidate`); a missing prediction is neither scored
nor learnt. Pure and vectorised over a batch of streams.
"""

from __future__ import annotations

import numpy as np

#: log-scale units stored per int8 step (tenths of a nat: the scale to within 5%).
STEPS_PER_NAT = 10.0
#: The int8 log-scale that marks a slot with no prediction.
MISSING = np.int8(127)
#: The largest scale (normalised units, as int8 steps) of a prediction that is judged: 0.5,
#: a prediction explaining at least 3/4 of the stream's variance. A wider one says little
#: more than the stream's usual range, which the level and range evidence already judge.
INFORMATIVE = np.int8(round(np.log(0.5) * STEPS_PER_NAT))


def fields(horizon: int, max_features: int, summary_fields: int) -> list[tuple[str, str, tuple]]:
    """The state record's fields for a model with this horizon (none without one)."""
    if horizon <= 0:
        return []
    shape = (horizon, max_features)
    return [
        ("ahead", "<f2", shape),
        ("ahead_scale", "i1", shape),
        ("horizon_surprise", "<f4", (summary_fields,)),
    ]


def surprise(z: np.ndarray, mask: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z [B, F] (normalised, unclipped) against the prediction made H events ago ->
    (surprise [B], valid [B]): valid where every used slot has a prediction and the stream
    has lived H events since it began."""
    loc = states["ahead"][:, 0].astype(np.float32)
    steps = states["ahead_scale"][:, 0]
    horizon = states["ahead"].shape[1]
    have = ((steps != MISSING) & (steps <= INFORMATIVE)) | ~mask
    valid = have.all(axis=1) & (states["count"].astype(np.int64) >= horizon) & mask.any(axis=1)
    scale = np.exp(np.where(have, steps, 0).astype(np.float32) / STEPS_PER_NAT)
    per_slot = np.abs(z - loc) / scale * mask
    value = per_slot.sum(axis=1) / np.maximum(mask.sum(axis=1), 1)
    return np.where(valid, value, 0.0).astype(np.float32), valid


def as_error(u: np.ndarray) -> np.ndarray:
    """Surprise u [B] -> the error the calibration judges: e^u (see the module), float64
    and capped so it stays finite."""
    return np.exp(np.minimum(u.astype(np.float64), 700.0))


def push(states: np.ndarray, loc: np.ndarray, log_scale: np.ndarray, mask: np.ndarray) -> None:
    """Append each stream's newest H-step prediction (loc, log_scale [B, F]) to its ring,
    in place on `states` (the detector's own fresh copy); unused slots are missing."""
    steps = np.clip(np.round(log_scale * STEPS_PER_NAT), -126, 126).astype(np.int8)
    states["ahead"][:, :-1] = states["ahead"][:, 1:]
    states["ahead_scale"][:, :-1] = states["ahead_scale"][:, 1:]
    states["ahead"][:, -1] = np.where(mask, loc, 0.0)
    states["ahead_scale"][:, -1] = np.where(mask, steps, MISSING)


def invalidate(states: np.ndarray) -> None:
    """Mark every pending prediction missing, in place (a new model's hidden state does
    not continue the old one's predictions)."""
    states["ahead_scale"] = MISSING
