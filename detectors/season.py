"""A per-stream time-of-day profile: what a stream usually looks like at this hour.

A recurrent model with 64 units cannot carry a daily cycle of 288 five-minute steps, so
every morning's rise looks like a surprise to it. The profile remembers the day instead:
`bins` slots over the UTC day, each an exponentially weighted mean of the stream's
normalised value at that time of day. The detector adds to the model's prediction (part
of) the change the profile expects between the previous event's time of day and this one.

A value falls between two slot centres and is shared between them (linear
interpolation), so 24 slots give a smooth profile, not a staircase. Slots start empty
(0 = no seasonal correction) and average their first visits exactly, then slowly adapt.
Without timestamps (ts_ms None) the profile stays at zero and the detector behaves as if
it did not exist. Pure, vectorised over a batch of streams.
"""

from __future__ import annotations

import numpy as np

DAY_MS = 86_400_000


def position(ts_ms: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epoch ms [B] -> (lower slot [B], upper slot [B], weight of the upper slot [B])."""
    phase = np.mod(ts_ms.astype(np.int64), DAY_MS).astype(np.float64) / DAY_MS * bins - 0.5
    lower = np.floor(phase)
    upper_w = (phase - lower).astype(np.float32)
    lo = np.mod(lower.astype(np.int64), bins)
    return lo, np.mod(lo + 1, bins), upper_w


def value(profile: np.ndarray, lo: np.ndarray, hi: np.ndarray, upper_w: np.ndarray) -> np.ndarray:
    """The profile [B, bins, F] read at each stream's position -> [B, F]."""
    rows = np.arange(len(lo))
    lower, upper = profile[rows, lo].astype(np.float32), profile[rows, hi].astype(np.float32)
    return (1.0 - upper_w)[:, None] * lower + upper_w[:, None] * upper


def update(
    profile: np.ndarray,
    visits: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    upper_w: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray,
    min_alpha: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Move the two slots around each position towards target [B, F] -> (profile, visits).

    Each slot moves by its share of the interpolation weight, with the EW weight
    max(1 / visits, min_alpha): exact averages at first, a memory of about 1 / min_alpha
    days later.
    """
    rows = np.arange(len(lo))
    new, counts = profile.copy(), visits.copy()  # never mutate the caller's states
    # Only the two touched slots per stream are widened to float32 (a whole-profile
    # conversion cost more than the rest of the detector's step together).
    for slot, w in ((lo, 1.0 - upper_w), (hi, upper_w)):
        n = counts[rows, slot].astype(np.int64) + 1
        alpha = (w * np.maximum(1.0 / n, min_alpha)).astype(np.float32)[:, None]
        current = new[rows, slot].astype(np.float32)
        new[rows, slot] = np.where(mask, current + alpha * (target - current), current)
        counts[rows, slot] = np.minimum(n, 255)
    return new, counts
