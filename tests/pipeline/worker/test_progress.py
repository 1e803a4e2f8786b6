"""The worker's progress line: at most once per interval, totals and changes, lag."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from pipeline.worker.loop import WorkerStats
from pipeline.worker.progress import ProgressLog


def test_one_line_per_interval_with_totals_changes_and_lag(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr("pipeline.worker.progress.time.monotonic", lambda: clock[0])
    progress = ProgressLog(15.0)
    stats = WorkerStats(records=1000, alerts=3, deadletters=Counter(empty=2))
    caplog.set_level(logging.INFO, logger="pipeline.worker")
    assert not progress.tick(stats)  # too early
    clock[0] += 15
    assert progress.tick(stats)
    stats.records, stats.lag = 1500, 42
    clock[0] += 5
    assert not progress.tick(stats)
    clock[0] += 10
    assert progress.tick(stats)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "worker progress: 1,000 events (+1,000), 3 alerts (+3), 2 dead letters (+2), lag -",
        "worker progress: 1,500 events (+500), 3 alerts (+0), 2 dead letters (+0), lag 42",
    ]
    assert caplog.records[-1].lag == 42  # type: ignore[attr-defined]


def test_zero_turns_it_off() -> None:
    assert not ProgressLog(0).tick(WorkerStats(records=5))
