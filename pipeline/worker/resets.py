"""The worker's side of a stream reset (`pipeline.state.reset`).

Two places: a reset marker loaded from Redis becomes a fresh state that keeps the marker's
partition and offset (so replays are still skipped), and a stream the checkpoint holds
when its reset notice arrives is replaced in memory the same way before the checkpoint
saves — otherwise the save would write the old state back over the marker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import redis

from detectors.state import StateLayout
from pipeline.state.base import HEADER, StoreUnavailable
from pipeline.state.reset import is_reset_marker, newest_reset, read_resets
from pipeline.worker.checkpoint import Checkpoint

log = logging.getLogger(__name__)


RESETS_EVERY_S = 0.1
"""How often a batch looks for new reset notices (a save always looks first). Once per
batch was a Redis round trip per batch, and while a checkpoint's save occupies Redis
each one waited for a part of it: the loop's own small batches paid for the save."""


class ResetWatcher:
    """Reads new reset notices; starts after the newest one present when created."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.after = newest_reset(client, prefix)
        self.polled = 0.0  # monotonic time of the last poll

    def due(self, seconds: float) -> bool:
        """Whether the last poll is at least `seconds` old."""
        return time.monotonic() - self.polled >= seconds

    def poll(self) -> list[str]:
        """Streams reset since the last poll (raises StoreUnavailable if Redis is down)."""
        self.polled = time.monotonic()
        try:
            streams, self.after = read_resets(self.client, self.prefix, self.after)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"Redis unavailable: {exc}") from exc
        return streams


def take_resets(watcher: ResetWatcher | None, checkpoint: Checkpoint, layout: StateLayout) -> int:
    """Replace the held states of streams reset since the last look (one XRANGE); the
    worker calls it before batches judge events against held states (every
    `RESETS_EVERY_S`), and before each save (which would otherwise write an old state
    back over the marker)."""
    return 0 if watcher is None else apply_resets(checkpoint, layout, watcher.poll())


def decode_states(
    layout: StateLayout, blobs: Sequence[bytes | None]
) -> tuple[np.ndarray, np.ndarray]:
    """`layout.decode`, except that reset markers become fresh states at their offsets."""
    marked = [i for i, blob in enumerate(blobs) if is_reset_marker(blob)]
    if not marked:
        return layout.decode(blobs)
    states, known = layout.decode([None if is_reset_marker(b) else b for b in blobs])
    for i in marked:
        _, _, partition, offset = HEADER.unpack_from(blobs[i])  # type: ignore[arg-type]
        states[i]["partition"], states[i]["offset"] = partition, offset
        known[i] = True
    return states, known


def apply_resets(checkpoint: Checkpoint, layout: StateLayout, streams: list[str]) -> int:
    """Replace the held states of reset streams with fresh ones at their offsets; returns
    how many were held. A dirty row stays dirty: its save then records the offsets it had
    applied, which the fencing accepts over the marker's lower offset."""
    held = [s for s in dict.fromkeys(streams) if s in checkpoint.rows]
    if not held:
        return 0
    rows = checkpoint.rows_of(held)
    fresh = layout.fresh(len(rows))
    fresh["partition"] = checkpoint.states["partition"][rows]
    fresh["offset"] = checkpoint.states["offset"][rows]
    checkpoint.states[rows] = fresh
    checkpoint.scores[rows] = 0.0
    for row in rows.tolist():
        checkpoint.history.pop(row, None)
    for stream in held:
        log.warning("stream %r reset: its state and feature set start afresh", stream)
    return len(held)
