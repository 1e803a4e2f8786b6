"""The synthetic suite: deterministic, every kind present, labels where the anomaly is."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.evaluation.anomaly_kinds import FAILURE_MODES, GENERATED
from detectors.evaluation.synthetic_suite import (
    NORMAL,
    BaseSignal,
    Case,
    generate_case,
    suite_cases,
)


def test_every_kind_is_in_both_sizes() -> None:
    for size in ("small", "full"):
        kinds = {c.kind for c in suite_cases(size)}
        assert kinds == {*GENERATED, *FAILURE_MODES, NORMAL}
    full = suite_cases("full")
    assert {c.base.sampling for c in full} == {"1min", "5min", "1h", "irregular"}
    assert {c.base.noise for c in full} == {"gaussian", "counts", "bursty"}
    assert {c.prior for c in full} == {False, True}
    assert len({c.file for c in full}) == len(full)


def test_same_case_same_bytes_and_seed_changes_them() -> None:
    case = suite_cases("small")[3]
    a, b = generate_case(case), generate_case(case)
    assert np.array_equal(a.values, b.values) and a.windows == b.windows
    other = generate_case(Case(case.kind, case.base, case.prior, case.seed + 1, case.days))
    assert not np.array_equal(a.values, other.values)


def test_times_increase_and_windows_hold_rows() -> None:
    for case in suite_cases("small"):
        s = generate_case(case)
        assert np.all(np.diff(s.ts_ms) > 0)
        assert np.all(np.isfinite(s.values))
        for start, end in s.windows:
            assert ((s.ts_ms >= start) & (s.ts_ms <= end)).any(), case.file
        assert (s.target >= 0) == (case.kind != NORMAL)


def test_irregular_sampling_has_uneven_gaps() -> None:
    base = BaseSignal("irregular", "counts", "daily")
    s = generate_case(Case("mean", base, False, 0, 3.0))
    gaps = np.diff(s.ts_ms)
    assert gaps.min() >= 10_000 and gaps.std() > 60_000
    assert np.array_equal(s.values, np.round(s.values)) and s.values.min() >= 0


@pytest.mark.parametrize("kind", ["mean", "extremum", "E_drift", "variance"])
def test_the_anomaly_lies_inside_the_target_window(kind: str) -> None:
    base = BaseSignal("5min", "gaussian", "none")
    anomalous = generate_case(Case(kind, base, False, 0, 6.0))
    start, end = anomalous.windows[anomalous.target]
    inside = (anomalous.ts_ms >= start) & (anomalous.ts_ms <= end)
    values = anomalous.values[:, 0]
    # outside the window the stream is its usual self (level 100, noise 5)
    assert abs(np.median(values[~inside]) - 100.0) < 1.0
    deviation = np.abs(values[inside] - 100.0).max()
    assert deviation > 3.0 * 5.0


def test_mode_correlation_has_two_channels_each_in_range() -> None:
    base = BaseSignal("5min", "gaussian", "none")
    s = generate_case(Case("mode_correlation", base, False, 0, 6.0))
    assert s.values.shape[1] == 2
    start, end = s.windows[s.target]
    inside = (s.ts_ms >= start) & (s.ts_ms <= end)
    gap = s.values[:, 0] - s.values[:, 1]
    # the channels agree (same mode) outside the window and disagree by 3 sigma inside
    assert abs(np.median(gap[~inside])) < 2.0
    assert np.median(np.abs(gap[inside])) > 10.0


def test_unknown_size_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown suite size"):
        suite_cases("huge")
