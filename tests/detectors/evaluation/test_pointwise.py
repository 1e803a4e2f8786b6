"""Point-wise figures (precision, recall, F1, false- and missed-alarm rates) and events."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.evaluation.pointwise import PointCounts, event_found, point_counts, total


def test_counts_and_rates() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 0], bool)
    flagged = np.array([1, 0, 0, 0, 1, 1, 0, 0, 0, 0], bool)
    c = point_counts(flagged, labels)
    assert c == PointCounts(tp=2, fp=1, fn=2, tn=5)
    assert c.precision == pytest.approx(2 / 3)
    assert c.recall == pytest.approx(0.5)
    assert c.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert c.false_alarm_rate == pytest.approx(1 / 6)
    assert c.missed_alarm_rate == pytest.approx(0.5)


def test_empty_denominators_are_nan_and_totals_add() -> None:
    none = point_counts(np.zeros(4, bool), np.zeros(4, bool))
    assert math.isnan(none.precision) and math.isnan(none.recall) and math.isnan(none.f1)
    assert none.false_alarm_rate == 0.0
    both = total([none, PointCounts(tp=1, fn=1)])
    assert both == PointCounts(tp=1, fp=0, fn=1, tn=4) and both.f1 == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        point_counts(np.zeros(3, bool), np.zeros(4, bool))


def test_an_event_is_found_by_an_alert_inside_it() -> None:
    labels = np.array([0, 1, 1, 0], bool)
    assert event_found(np.array([0, 0, 1, 0], bool), labels)
    assert not event_found(np.array([1, 0, 0, 1], bool), labels)
