"""The few settings the worker loop reads, as one small frozen record.

`Settings` has some fifty fields for every component; the loop needs sixteen. Building
`LoopConfig` in the wiring (`LoopConfig.of(settings)`) keeps the loop's inputs visible in
one place and lets a test build a loop without a whole configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.settings import Settings


@dataclass(frozen=True)
class LoopConfig:
    events_topic: str
    alerts_topic: str
    deadletter_topic: str
    poll_timeout_ms: int
    max_poll_records: int
    batch_budget_ms: int
    commit_interval_ms: int
    max_cached_streams: int  # held states before a checkpoint and an eviction
    history_length: int  # API history points kept per stream (0: none)
    progress_log_seconds: float
    peak_retention_hours: float
    peak_bucket_seconds: int
    alert_clear: float
    max_future_seconds: float
    device: str  # torch device of a swapped-in model
    worker_stall_seconds: float  # read by the health port

    @classmethod
    def of(cls, settings: Settings) -> LoopConfig:
        """The loop's fields of a `pipeline.settings.Settings` (same names)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})
