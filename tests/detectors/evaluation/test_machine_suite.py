"""The multivariate machine suite: correlated sensors, and each anomaly kind changes one
sensor in the way its name says (seen jointly, not always alone)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.evaluation.machine_suite import (
    KINDS,
    NORMAL,
    MachineCase,
    MachineSeries,
    generate_machine,
    machine_cases,
)


def _case(kind: str, sensors: int = 4, seed: int = 3) -> MachineSeries:
    return generate_machine(MachineCase(kind, sensors, seed, 1.0, 30.0))


def _joint_residual(s: MachineSeries) -> np.ndarray:
    """|culprit - its least-squares fit on the other sensors| (fitted on normal rows),
    in units of the fit's normal residual spread."""
    others = np.delete(s.values, s.culprit, axis=1)
    design = np.column_stack([others, np.ones(len(others))])
    normal = ~s.labels()
    coef, *_ = np.linalg.lstsq(design[normal], s.values[normal, s.culprit], rcond=None)
    residual = s.values[:, s.culprit] - design @ coef
    return np.abs(residual) / residual[normal].std()


def test_generation_is_deterministic_and_labelled() -> None:
    for case in machine_cases("small"):
        a, b = generate_machine(case), generate_machine(case)
        assert np.array_equal(a.values, b.values) and np.array_equal(a.ts_ms, b.ts_ms)
        assert a.values.shape == (2880, 4) and np.isfinite(a.values).all()
        if case.kind == NORMAL:
            assert a.window is None and a.culprit == -1 and not a.labels().any()
        else:
            assert 0 <= a.culprit < 4 and a.window is not None
            assert a.ts_ms[0] < a.window[0] < a.window[1]
            assert 100 < a.labels().sum() < len(a.ts_ms) // 2


def test_sensors_move_together() -> None:
    s = _case(NORMAL, sensors=8)
    corr = np.abs(np.corrcoef(s.values.T))
    assert np.median(corr[np.triu_indices(8, 1)]) > 0.6


@pytest.mark.parametrize(
    ("kind", "far"), [("correlation_break", 2.0), ("sensor_shift", 3.0), ("degradation", 3.0)]
)
def test_relation_breaks_are_visible_jointly(kind: str, far: float) -> None:
    """A sensor moving against the others, shifted, or worn: far outside the normal joint
    residual (a reversal grows with how far the drivers move after its onset)."""
    s = _case(kind)
    z = _joint_residual(s)
    assert s.window is not None
    span = s.labels() & (s.ts_ms <= s.window[1] - 15 * 60_000)  # not the late-alert pad
    assert np.median(z[span][-120:]) > far  # the anomaly's last hour, off its relation
    assert np.median(z[~s.labels()]) < 1.0


def test_a_correlation_break_keeps_the_sensor_in_its_usual_range() -> None:
    s = _case("correlation_break")
    column, inside = s.values[:, s.culprit], s.labels()
    lo, hi = np.quantile(column[~inside], [0.001, 0.999])
    assert np.mean((column[inside] >= lo) & (column[inside] <= hi)) > 0.9


def test_freeze_and_noise_change_only_the_culprit() -> None:
    frozen = _case("sensor_freeze")
    stuck = frozen.values[frozen.labels()][:200]  # the span, not the late-alert pad
    assert np.ptp(stuck[:, frozen.culprit]) == 0.0
    assert all(np.ptp(stuck[:, k]) > 0.0 for k in range(4) if k != frozen.culprit)
    noisy = _case("sensor_noise")
    inside = noisy.labels()
    jumps = np.abs(np.diff(noisy.values, axis=0))
    ratio = np.median(jumps[inside[1:]], axis=0) / np.median(jumps[~inside[1:]], axis=0)
    assert ratio[noisy.culprit] > 3.0
    assert np.all(np.delete(ratio, noisy.culprit) < 1.5)


def test_cases_cover_every_kind_and_width() -> None:
    full = machine_cases("full")
    assert {(c.kind, c.sensors) for c in full} == {(k, w) for k in (*KINDS, NORMAL) for w in (4, 8)}
    with pytest.raises(ValueError, match="unknown suite size"):
        machine_cases("huge")
