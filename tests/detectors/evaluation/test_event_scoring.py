"""Event-wise scoring as MGAB defines it."""

from __future__ import annotations

import math

import numpy as np

from detectors.evaluation.event_scoring import EventCounts, score_events


def _alerts(n: int, rows: list[int]) -> np.ndarray:
    out = np.zeros(n, bool)
    out[rows] = True
    return out


def test_window_found_by_one_alert_and_precision_counts_alerts() -> None:
    windows = [(100, 199), (500, 599)]
    counts = score_events(_alerts(1000, [150, 160, 700]), windows)
    assert counts == EventCounts(windows=2, found=1, alerts=3, alerts_inside=2)
    assert counts.recall == 0.5 and math.isclose(counts.precision, 2 / 3)
    assert counts.false_alerts == 1
    assert math.isclose(counts.f1, 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_warmup_alerts_and_windows_are_ignored() -> None:
    counts = score_events(_alerts(1000, [10, 300]), [(0, 99), (250, 349)], warmup=256)
    assert counts == EventCounts(windows=1, found=1, alerts=1, alerts_inside=1)


def test_no_alerts_gives_undefined_precision_and_zero_f1() -> None:
    counts = score_events(np.zeros(100, bool), [(10, 20)])
    assert math.isnan(counts.precision) and counts.recall == 0.0 and counts.f1 == 0.0
    total = counts + score_events(_alerts(100, [15]), [(10, 20)])
    assert total == EventCounts(windows=2, found=1, alerts=1, alerts_inside=1)
