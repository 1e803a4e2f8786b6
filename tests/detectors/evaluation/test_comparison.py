"""Leave-one-category-out and gain concentration on small hand-made corpora."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.evaluation.comparison import (
    ALERTED,
    gain_concentration,
    leave_one_category_out,
)
from detectors.evaluation.nab_scoring import PROFILES, ScoredFile, score_corpus

N = 1000
STAMPS = np.arange(N).astype("datetime64[m]")


def _file(name: str, hits: list[int], windows: tuple[tuple[int, int], ...]) -> ScoredFile:
    scores = np.zeros(N)
    scores[hits] = 0.9
    return ScoredFile(name, STAMPS, scores, windows)


WINDOW = ((500, 599),)


def test_each_fold_uses_a_threshold_chosen_without_it() -> None:
    files = [
        _file("a/1.csv", [510], WINDOW),
        _file("a/2.csv", [520], WINDOW),
        _file("b/1.csv", [800], WINDOW),  # only a false detection: b alone would never fire
        _file("quiet/1.csv", [300, 400], ()),
    ]
    folds = {f.category: f for f in leave_one_category_out(files, PROFILES["standard"])}
    assert set(folds) == {"a", "b", "quiet"}
    # b's threshold comes from a and quiet, where firing at 0.9 pays: so b gets it and loses
    assert folds["b"].threshold == 0.9 and folds["b"].score < 0
    assert folds["b"].false_detections == 1
    # a category without windows has no score, only its false detections
    assert math.isnan(folds["quiet"].score) and folds["quiet"].false_detections == 2


def test_gain_concentration_adds_up_and_flags_two_files_as_noise() -> None:
    names = [f"c/{i}.csv" for i in range(6)]
    before = [_file(n, [], WINDOW) for n in names]
    after = [_file(n, [510] if i < 2 else [], WINDOW) for i, n in enumerate(names)]
    profile = PROFILES["standard"]
    a = score_corpus(before, ALERTED, profile)
    b = score_corpus(after, ALERTED, profile)
    result = gain_concentration(a, b)
    assert math.isclose(sum(d.delta for d in result.deltas), b.score - a.score)
    assert result.carriers == 2 and result.noise
    spread = [_file(n, [510], WINDOW) for n in names]
    broad = gain_concentration(a, score_corpus(spread, ALERTED, profile))
    assert broad.carriers == 6 and not broad.noise and math.isclose(broad.share, 1.0)


def test_different_files_cannot_be_compared() -> None:
    profile = PROFILES["standard"]
    a = score_corpus([_file("c/1.csv", [], WINDOW)], ALERTED, profile)
    b = score_corpus([_file("c/2.csv", [], WINDOW)], ALERTED, profile)
    with pytest.raises(ValueError, match="different files"):
        gain_concentration(a, b)
