"""The time-of-day profile: positions on the day, learning a daily shape, no mutation."""

from __future__ import annotations

import numpy as np

from detectors import season

HOUR = 3_600_000


def test_position_interpolates_between_slot_centres_and_wraps() -> None:
    lo, hi, w = season.position(np.array([0, HOUR // 2, HOUR, 23 * HOUR + HOUR // 2]), 24)
    assert lo.tolist() == [23, 0, 0, 23]
    assert hi.tolist() == [0, 1, 1, 0]
    np.testing.assert_allclose(w, [0.5, 0.0, 0.5, 0.0])


def test_profile_learns_a_daily_square_wave() -> None:
    profile = np.zeros((1, 24, 1), np.float16)
    visits = np.zeros((1, 24), np.uint8)
    mask = np.ones((1, 1), bool)
    day_shape = lambda ts: 1.0 if (ts // HOUR) % 24 >= 12 else -1.0  # noqa: E731
    for ts in range(0, 10 * 24 * HOUR, HOUR // 12):
        lo, hi, w = season.position(np.array([ts]), 24)
        target = np.array([[day_shape(ts)]], np.float32)
        profile, visits = season.update(profile, visits, lo, hi, w, target, mask, 0.1)
    for hour, want in ((3, -1.0), (18, 1.0)):
        lo, hi, w = season.position(np.array([hour * HOUR]), 24)
        assert abs(float(season.value(profile, lo, hi, w)[0, 0]) - want) < 0.1


def test_update_returns_new_arrays_and_respects_the_mask() -> None:
    profile = np.zeros((2, 24, 1), np.float16)
    visits = np.zeros((2, 24), np.uint8)
    lo, hi, w = season.position(np.array([HOUR, HOUR]), 24)
    mask = np.array([[True], [False]])
    new, seen = season.update(profile, visits, lo, hi, w, np.ones((2, 1), np.float32), mask, 0.1)
    assert not profile.any() and not visits.any()
    assert new[0].any() and not new[1].any()
    assert seen[0].sum() == 2
