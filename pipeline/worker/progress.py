"""One info line every `progress_log_seconds` while a worker runs, so `kubectl logs` (or
a terminal) shows it is alive and what it does, without a metrics stack:

    worker progress: 120,000 events (+8,000), 12 alerts (+1), 3 dead letters (+0), lag 0

Counts are totals since start with the change since the previous line; lag is the records
behind the partitions' ends at the last checkpoint, when the broker reports end offsets
(`-` when it cannot tell). With JSON logs (`log_format = "json"`) the same numbers are
fields of the record (`extra`), not only text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Protocol

log = logging.getLogger("pipeline.worker")


class _Stats(Protocol):
    records: int
    alerts: int
    lag: int | None

    @property
    def deadletters(self) -> Mapping[str, int]: ...


class ProgressLog:
    """Call `tick(stats)` from the loop as often as you like; it logs at most once per
    interval (0 turns it off)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._next = time.monotonic() + interval_s
        self._last = (0, 0, 0)

    def tick(self, stats: _Stats) -> bool:
        """Log a line if the interval has passed; returns whether it did."""
        now = time.monotonic()
        if self.interval_s <= 0 or now < self._next:
            return False
        self._next = now + self.interval_s
        counts = (stats.records, stats.alerts, sum(stats.deadletters.values()))
        events, alerts, dead = counts
        d_events, d_alerts, d_dead = (a - b for a, b in zip(counts, self._last, strict=True))
        self._last = counts
        lag = "-" if stats.lag is None else f"{stats.lag:,}"
        log.info(
            "worker progress: %s events (+%s), %s alerts (+%s), %s dead letters (+%s), lag %s",
            f"{events:,}", f"{d_events:,}", f"{alerts:,}", f"{d_alerts:,}", f"{dead:,}",
            f"{d_dead:,}", lag,
            extra={"events": events, "alerts": alerts, "deadletters": dead, "lag": stats.lag},
        )  # fmt: skip
        return True
