"""The Mackey-Glass generator: the chaotic attractor MGAB uses, and seamless anomalies."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from detectors.evaluation.mackey_glass import integrate, with_anomalies


def test_solution_stays_on_the_attractor_and_is_reproducible() -> None:
    x = integrate(3000, seed=0)
    assert np.array_equal(x, integrate(3000, seed=0))
    # MGAB's series (tau 18, n 10) range from about 0.27 to 1.65
    assert 0.2 < x.min() < 0.4 and 1.5 < x.max() < 1.7
    # chaotic: a change of the initial history in the second decimal ends elsewhere
    other = integrate(3000, seed=1)
    assert np.abs(x[-500:] - other[-500:]).max() > 0.5


def test_anomalies_are_stitched_without_a_jump() -> None:
    values, windows = with_anomalies(8000, 4, seed=2)
    assert len(values) == 8000 and len(windows) == 4
    for first, last in windows:
        assert last - first + 1 == 400
    assert all(a[1] < b[0] for a, b in itertools.pairwise(windows))
    assert windows[0][0] >= 8000 // 5 - 200
    steps = np.abs(np.diff(values))
    clean = np.abs(np.diff(integrate(8000, seed=2)))
    # no step at a stitch is larger than the largest ordinary step plus the noise
    assert steps.max() < clean.max() + 0.05


def test_too_many_anomalies_are_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        with_anomalies(2000, 10)
