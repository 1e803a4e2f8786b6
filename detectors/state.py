"""The per-stream state: a small fixed-size little-endian binary record, not pickle.

Every stream's record holds what is specific to that stream: where it is in Kafka (the
fencing header the Redis store checks), which model version its hidden state belongs to,
normalisation and error statistics, a time-of-day profile (`detectors.season`), the
recurrent state, the prediction made for the next event, the alert policy's memory, and a
ring buffer of recent model inputs from which a new model version re-warms the hidden
state. Layout 2 added the profile and the extra scoring statistics; layout 3 the statistics of
the distance from the profile (`level_*`) and a 16-event ring, so an LSTM record fits
under 1 KiB. Layout 4 adds the running range of each feature (`range_*`, see
`detectors.scoring.range_score`) and the peak of the profile distance, paid for by a
12-event ring and room for one extra scoring average instead of two: 8 bytes smaller.
Layout 5 replaces the alert flag and cooldown counter by the episode policy's fields
(`detectors.policy.EPISODE_FIELDS`: in-episode flag, peak, start and last loud time).
Layout 6 replaces the extra scoring average's statistics by the summary of the stream's own
prediction errors (`surprise`, `detectors.calibration`): 8 bytes larger.
Layout 7 adds, for a model with a horizon, the ring of its last H direct predictions and
the summary of their surprise (`detectors.horizon`): 236 bytes at H = 18 and 4 slots.

The record is a numpy structured dtype, so a whole batch of B records converts to and
from one contiguous buffer without a per-field Python loop.

Header (the first 16 bytes are fixed for every layout; the state store relies on them):
    magic b"VG", layout u16, partition i32, offset i64
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from detectors import calibration, horizon
from detectors.policy import EPISODE_FIELDS, FLAG_IN_EPISODE

MAGIC = b"VG"
LAYOUT_VERSION = 7
HEADER_BYTES = 16
FLAG_IN_ALERT = FLAG_IN_EPISODE


class StateFormatError(ValueError):
    """A stored record that this layout cannot read (corrupt, or another layout)."""


@dataclass(frozen=True)
class StateLayout:
    """Sizes that fix a record's shape; derived from the model config and ring length."""

    state_size: int
    max_features: int
    ring_len: int = 12
    season_bins: int = 24
    horizon: int = 0  # the model's horizon: the ring of its pending direct predictions

    @cached_property
    def dtype(self) -> np.dtype:
        f, k, s = self.max_features, self.ring_len, self.season_bins
        return np.dtype(
            [
                ("magic", "S2"),
                ("layout", "<u2"),
                ("partition", "<i4"),
                ("offset", "<i8"),
                ("model_tag", "<u4"),
                ("feature_tag", "<u4"),
                ("n_features", "u1"),
                *EPISODE_FIELDS,
                ("reserved", "<u2"),  # keeps the floats below 4-byte aligned
                ("count", "<u4"),
                ("last_ts", "<i8"),
                ("norm_mean", "<f4", (f,)),
                ("norm_var", "<f4", (f,)),
                ("pred", "<f4", (f,)),
                ("err_short", "<f4"),
                ("err_mean", "<f4"),
                ("err_var", "<f4"),
                ("surprise", "<f4", (calibration.FIELDS,)),  # all zeros when fresh
                ("level_count", "<u4"),
                ("level_err", "<f4", (4,)),
                ("range_low", "<f4", (f,)),
                ("range_high", "<f4", (f,)),
                ("season_visits", "u1", (s,)),
                ("season", "<f2", (s, f)),
                ("ring", "<f2", (k, f)),
                ("hidden", "<f4", (self.state_size,)),
                *horizon.fields(self.horizon, f, calibration.FIELDS),
            ]
        )

    @property
    def record_bytes(self) -> int:
        return int(self.dtype.itemsize)

    def fresh(self, n: int) -> np.ndarray:
        """States for streams never seen before."""
        states = np.zeros(n, dtype=self.dtype)
        states["magic"] = MAGIC
        states["layout"] = LAYOUT_VERSION
        states["partition"] = -1
        states["offset"] = -1
        states["norm_var"] = 1.0
        return states

    def decode(self, blobs: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
        """Blobs (None = unknown stream) -> (states [B], known mask [B]).

        A blob of the wrong size or magic raises StateFormatError: silently resetting a
        stream would hide a deployment mistake (two layouts writing the same keys).
        """
        size = self.record_bytes
        known = np.fromiter((b is not None for b in blobs), dtype=bool, count=len(blobs))
        states = self.fresh(len(blobs))
        if known.any():
            present = [b for b in blobs if b is not None]
            if any(len(b) != size for b in present):
                bad = next(len(b) for b in present if len(b) != size)
                raise StateFormatError(f"state record of {bad} bytes, layout expects {size}")
            loaded = np.frombuffer(b"".join(present), dtype=self.dtype)
            if not (loaded["magic"] == MAGIC).all():
                raise StateFormatError("state record without the VG magic")
            states[known] = loaded
        return states, known

    def encode(self, states: np.ndarray) -> list[bytes]:
        """States [B] -> B blobs (one tight slicing loop over one contiguous buffer)."""
        buffer = np.ascontiguousarray(states, dtype=self.dtype).tobytes()
        size = self.record_bytes
        return [buffer[i : i + size] for i in range(0, len(buffer), size)]
