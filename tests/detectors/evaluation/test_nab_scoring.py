"""NAB scoring checked by hand against the rules in the dev split's README.

Expected values use s(x) = -tanh(5x / 2), an independent way of writing
2 / (1 + exp(5x)) - 1, so a slip in the module's formula shows up here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.evaluation.nab_scoring import (
    PROFILES,
    ScoredFile,
    probationary_rows,
    score_corpus,
    score_file,
    sweep_threshold,
    window_rows,
)

STANDARD = PROFILES["standard"]
FP = STANDARD.fp


def s(x: float) -> float:
    return -1.0 if x > 3 else -math.tanh(2.5 * x)


def tp_value(i: int, first: int, last: int) -> float:
    width = last - first + 1
    return s(-(last - i + 1) / width) / s(-1.0)


def make(
    n: int, windows: list[tuple[int, int]], detections: list[int], name: str = "f.csv"
) -> ScoredFile:
    stamps = np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(5, "m")
    scores = np.zeros(n)
    scores[detections] = 1.0
    return ScoredFile(name, stamps, scores, tuple(windows))


def one(n: int, windows: list[tuple[int, int]], detections: list[int]) -> float:
    return score_file(make(n, windows, detections), 0.5, STANDARD).score


# N = 100 -> probationary rows 0..14; one window on rows 40..49 (width 10).
WINDOW = [(40, 49)]


def test_probationary_length() -> None:
    assert probationary_rows(100) == 15
    assert probationary_rows(1127) == 169
    assert probationary_rows(5000) == 750
    assert probationary_rows(10) == 1


def test_detection_at_window_start_earns_full_tp() -> None:
    assert one(100, WINDOW, [40]) == pytest.approx(1.0)


def test_detection_at_window_end_earns_little() -> None:
    assert one(100, WINDOW, [49]) == pytest.approx(math.tanh(0.25) / math.tanh(2.5))


def test_earlier_detection_earns_more() -> None:
    values = [one(100, WINDOW, [i]) for i in range(40, 50)]
    assert values == sorted(values, reverse=True)


def test_only_first_detection_in_window_counts() -> None:
    result = score_file(make(100, WINDOW, [43, 45, 48]), 0.5, STANDARD)
    assert result.score == pytest.approx(tp_value(43, 40, 49))
    assert (result.tp_windows, result.fn_windows, result.fp_detections) == (1, 0, 0)
    assert result.delays_rows == (3,)
    assert result.delays_seconds == (15 * 60.0,)


def test_missed_window_costs_fn() -> None:
    assert one(100, WINDOW, []) == pytest.approx(-1.0)
    missed = score_file(make(100, WINDOW, []), 0.5, PROFILES["reward_low_FN"])
    assert missed.score == pytest.approx(-2.0)


def test_detection_just_after_window_costs_partly() -> None:
    # Row 58: d = (58 - 49) / (10 - 1) = 1.
    assert one(100, WINDOW, [58]) == pytest.approx(-1.0 + FP * s(1.0))
    # Row 50: d = 1/9, barely past the window, costs little.
    assert one(100, WINDOW, [50]) == pytest.approx(-1.0 + FP * s(1 / 9))
    assert -1.0 + FP * s(1 / 9) > -1.0 - FP / 2


def test_detection_three_widths_after_window() -> None:
    # Row 76: d = 27 / 9 = 3 exactly, still on the sigmoid.
    assert one(100, WINDOW, [76]) == pytest.approx(-1.0 + FP * -math.tanh(7.5))
    # Row 77: d = 28 / 9 > 3, the full false-positive cost.
    assert one(100, WINDOW, [77]) == pytest.approx(-1.0 - FP)


def test_detection_before_any_window_costs_full_fp() -> None:
    assert one(100, WINDOW, [20]) == pytest.approx(-1.0 - FP)
    assert one(100, [], [20, 30]) == pytest.approx(-2 * FP)


def test_false_positive_measured_from_preceding_window() -> None:
    # Windows 30..39 (width 10) and 70..73 (width 4); row 60 follows the first.
    windows = [(30, 39), (70, 73)]
    assert one(100, windows, [60]) == pytest.approx(-2.0 + FP * s(21 / 9))
    # Row 80 follows the second: d = 7 / 3.
    assert one(100, windows, [80]) == pytest.approx(-2.0 + FP * s(7 / 3))


def test_one_row_window_counts_distance_in_rows() -> None:
    assert one(100, [(40, 40)], [40]) == pytest.approx(1.0)
    assert one(100, [(40, 40)], [42]) == pytest.approx(-1.0 + FP * s(2.0))


def test_probationary_detections_are_ignored() -> None:
    assert one(100, WINDOW, [3, 10, 14]) == pytest.approx(-1.0)
    assert one(100, WINDOW, [15]) == pytest.approx(-1.0 - FP)


def test_window_starting_in_probation_is_detected_after_it() -> None:
    # Window 10..30 (width 21): the flag at 12 is ignored, the one at 20 counts.
    assert one(100, [(10, 30)], [12, 20]) == pytest.approx(tp_value(20, 10, 30))
    # A window that ends inside the probationary period is not scored at all.
    result = score_file(make(100, [(2, 8)], [5]), 0.5, STANDARD)
    assert (result.score, result.tp_windows, result.fn_windows) == (0.0, 0, 0)


def test_null_and_perfect_detectors_score_0_and_100() -> None:
    layouts = [(100, [(40, 49)]), (200, [(50, 59), (120, 149)]), (80, [])]
    null = [make(n, w, [], f"{i}.csv") for i, (n, w) in enumerate(layouts)]
    perfect = [make(n, w, [a for a, _ in w], f"{i}.csv") for i, (n, w) in enumerate(layouts)]
    for profile in PROFILES.values():
        assert score_corpus(null, 0.5, profile).score == pytest.approx(0.0)
        result = score_corpus(perfect, 0.5, profile)
        assert result.score == pytest.approx(100.0)
        assert (result.raw, result.null, result.perfect) == pytest.approx((3.0, -3 * profile.fn, 3))


def test_normalisation_example() -> None:
    # One window caught at its start, one missed, one false positive before any window.
    files = [make(100, [(40, 49)], [20, 40], "a.csv"), make(100, [(60, 69)], [], "b.csv")]
    result = score_corpus(files, 0.5, STANDARD)
    raw = 1.0 - FP - 1.0
    assert result.raw == pytest.approx(raw)
    assert result.score == pytest.approx(100 * (raw + 2) / 4)
    assert (result.tp_windows, result.fn_windows, result.fp_detections) == (1, 1, 1)
    assert (result.precision, result.recall) == (0.5, 0.5)
    assert result.f1 == pytest.approx(0.5)
    assert result.mean_delay_rows == 0.0


def test_corpus_without_windows_is_refused() -> None:
    with pytest.raises(ValueError, match="undefined"):
        score_corpus([make(100, [], [50])], 0.5, STANDARD)


def test_window_rows_from_timestamps_with_repeats() -> None:
    stamps = np.array(
        ["2024-01-01 00:00", "2024-01-01 00:05", "2024-01-01 00:05", "2024-01-01 00:10"],
        dtype="datetime64[us]",
    )
    window = (np.datetime64("2024-01-01T00:05"), np.datetime64("2024-01-01T00:10"))
    assert window_rows(stamps, [window]) == ((1, 3),)
    with pytest.raises(ValueError, match="no row"):
        window_rows(stamps, [(np.datetime64("2024-01-02"), np.datetime64("2024-01-03"))])
    with pytest.raises(ValueError, match="backwards"):
        window_rows(stamps[::-1], [window])


@pytest.mark.parametrize(
    ("scores", "windows", "message"),
    [
        ([0.1, 1.5, 0.2], (), r"\[0, 1\]"),
        ([0.1, math.nan, 0.2], (), "NaN"),
        ([0.1, 0.2, 0.3], ((1, 3),), "bad window"),
        ([0.1, 0.2, 0.3], ((1, 2), (2, 2)), "bad window"),
    ],
)
def test_bad_inputs_are_refused(
    scores: list[float], windows: tuple[tuple[int, int], ...], message: str
) -> None:
    stamps = np.arange(3).astype("datetime64[m]")
    with pytest.raises(ValueError, match=message):
        ScoredFile("f.csv", stamps, np.array(scores), windows)


def test_sweep_finds_threshold_implied_by_perfect_scores() -> None:
    rng = np.random.default_rng(1)
    files = []
    for i, (n, windows) in enumerate([(300, [(100, 119)]), (400, [(150, 159), (300, 339)])]):
        file = make(n, windows, [], f"{i}.csv")
        file.scores[:] = rng.uniform(0.0, 0.6, n)
        file.scores[[a for a, _ in windows]] = 0.9
        files.append(file)
    for profile in PROFILES.values():
        assert sweep_threshold(files, profile) == (pytest.approx(0.9), pytest.approx(100.0))


def test_sweep_picks_never_when_every_flag_costs() -> None:
    file = make(100, WINDOW, [20, 80])
    assert sweep_threshold([file], STANDARD) == (math.inf, 0.0)


def test_sweep_trades_false_positives_against_recall() -> None:
    # Flagging the window at 0.7 also flags 20 rows far from it: 20 * 0.11 > 1, so the
    # standard profile stops at 0.8 (one false positive); reward_low_FN (fn = 2) goes on.
    file = make(200, [(100, 109)], [])
    file.scores[50] = 0.8
    file.scores[100] = 0.7
    file.scores[150:170] = 0.7
    assert sweep_threshold([file], STANDARD)[0] == math.inf
    threshold, score = sweep_threshold([file], PROFILES["reward_low_FN"])
    assert threshold == 0.7
    assert score == pytest.approx(score_corpus([file], 0.7, PROFILES["reward_low_FN"]).score)


@st.composite
def corpora(draw: st.DrawFn) -> list[ScoredFile]:
    files = []
    for k in range(draw(st.integers(1, 3))):
        n = draw(st.integers(20, 120))
        cuts = sorted(draw(st.sets(st.integers(0, n - 1), max_size=6)))
        windows = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
        levels = st.sampled_from([0.0, 0.2, 0.25, 0.5, 0.75, 1.0])
        scores = np.array(draw(st.lists(levels, min_size=n, max_size=n)))
        stamps = np.arange(n).astype("datetime64[m]")
        files.append(ScoredFile(f"{k}.csv", stamps, scores, tuple(windows)))
    return files


@settings(max_examples=300, deadline=None)
@given(corpora())
def test_sweep_matches_brute_force(files: list[ScoredFile]) -> None:
    for profile in PROFILES.values():
        try:
            threshold, best = sweep_threshold(files, profile)
        except ValueError:
            continue  # nothing scorable: score_corpus refuses too
        brute = [
            score_corpus(files, float(t), profile).score
            for t in np.unique(np.concatenate([f.scores for f in files]))
        ]
        assert best == pytest.approx(max([0.0, *brute]), abs=1e-9)
        assert best == pytest.approx(score_corpus(files, threshold, profile).score, abs=1e-9)
