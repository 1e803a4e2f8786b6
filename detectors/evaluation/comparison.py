"""Scores that resist overfitting: leave-one-category-out, and where a gain comes from.

Leave-one-category-out: a NAB score at a swept threshold has seen the labels of every
file it is reported on. Here the threshold of each category is swept on the *other*
categories and the held-out one is scored with it, so the figure says what a threshold
chosen elsewhere earns on series of a new kind. The spread over categories is part of the
result: a mean hiding one category at 20 is not a detector that generalises.

Gain concentration: the difference between two runs, split per file. NAB's normalised
score is linear in the per-file raw scores (both runs share the null and perfect
detectors of the same windows), so the per-file deltas in points add up exactly to the
total. A gain carried by one or two files is noise (a constant tuned until those files
flipped), not progress.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.evaluation.nab_scoring import (
    PROFILES,
    CorpusResult,
    Profile,
    ScoredFile,
    probationary_rows,
    score_corpus,
    sweep_threshold,
)

#: Files carrying a gain at or below this count make it noise.
NOISE_FILES = 2
#: A threshold just above 0: for `vigil backtest --format nab`, whose score is non-zero
#: only where the alert policy fired, this scores exactly the alerts the product raises.
ALERTED = float(np.nextafter(0.0, 1.0))


@dataclass(frozen=True)
class Fold:
    """One held-out category: the threshold chosen without it and what it earned there."""

    category: str
    threshold: float
    score: float  # NaN when the category has no scorable window (e.g. no anomalies)
    false_detections: int
    result: CorpusResult | None


def category(name: str) -> str:
    return name.split("/", 1)[0]


def _scorable(files: Sequence[ScoredFile]) -> bool:
    return any(last >= probationary_rows(len(f.scores)) for f in files for _, last in f.windows)


def leave_one_category_out(files: Sequence[ScoredFile], profile: Profile) -> list[Fold]:
    """One fold per category, in name order."""
    folds = []
    for held in sorted({category(f.name) for f in files}):
        inside = [f for f in files if category(f.name) == held]
        others = [f for f in files if category(f.name) != held]
        if not _scorable(others):
            raise ValueError(f"without {held} no category has a scorable window")
        threshold, _ = sweep_threshold(others, profile)
        if _scorable(inside):
            result = score_corpus(inside, threshold, profile)
            folds.append(Fold(held, threshold, result.score, result.fp_detections, result))
        else:
            false = sum(
                int((f.scores[probationary_rows(len(f.scores)) :] >= threshold).sum())
                for f in inside
            )
            folds.append(Fold(held, threshold, math.nan, false, None))
    return folds


def fold_summary(folds: Sequence[Fold]) -> tuple[float, float, float, float]:
    """(mean, standard deviation, min, max) of the scorable folds' scores."""
    scores = np.array([f.score for f in folds if not math.isnan(f.score)])
    if len(scores) == 0:
        return math.nan, math.nan, math.nan, math.nan
    return float(scores.mean()), float(scores.std()), float(scores.min()), float(scores.max())


@dataclass(frozen=True)
class FileDelta:
    name: str
    before: float  # the file's part of the normalised score, in NAB points
    after: float

    @property
    def delta(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class Concentration:
    """Where the difference between two runs comes from."""

    total: float  # after - before, NAB points
    deltas: tuple[FileDelta, ...]  # largest |delta| first
    carriers: int  # fewest files whose deltas add up to the total's sign and size
    share: float  # what share of the total those files carry

    @property
    def noise(self) -> bool:
        """A change carried by <= NOISE_FILES files (or none at all) is not progress."""
        return self.carriers <= NOISE_FILES


def _points(result: CorpusResult) -> dict[str, float]:
    """Each file's part of the normalised score: its raw score above its own null."""
    scale = 100.0 / (result.perfect - result.null)
    fn = PROFILES[result.profile].fn
    return {f.name: scale * (f.score + fn * (f.tp_windows + f.fn_windows)) for f in result.files}


def gain_concentration(before: CorpusResult, after: CorpusResult) -> Concentration:
    """Split ``after.score - before.score`` per file (the same files and windows)."""
    a, b = _points(before), _points(after)
    if set(a) != set(b):
        raise ValueError("the two runs were scored on different files")
    deltas = sorted((FileDelta(n, a[n], b[n]) for n in a), key=lambda d: -abs(d.delta))
    total = after.score - before.score
    sign = 1.0 if total >= 0 else -1.0
    carried, carriers = 0.0, 0
    for d in sorted(deltas, key=lambda d: -sign * d.delta):
        if sign * carried >= sign * total - 1e-9 or sign * d.delta <= 0:
            break
        carried += d.delta
        carriers += 1
    share = carried / total if total else math.nan
    return Concentration(total, tuple(deltas), carriers, share)
