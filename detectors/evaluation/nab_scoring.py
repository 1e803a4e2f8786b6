"""NAB (Numenta Anomaly Benchmark) scoring, written from the rules in the dev split's README.

Every flagged row is priced by where it falls: the first flag inside an anomaly window earns
up to the true-positive weight (more the earlier it is), a window never flagged costs the
false-negative weight, and a flag outside every window costs up to the false-positive
weight (less when it lands just after a window, where a late detection is still useful).

Edge cases the README leaves open, resolved here:

- The probationary period is the first ``floor(0.15 N)`` rows, capped at 750, computed
  with integers so no float rounding can shift it by a row.
- Flags in the probationary period are ignored entirely: they earn nothing, cost nothing
  and do not use up a window's "first detection".
- A window that ends inside the probationary period cannot be scored, so it is left out of
  the true/false-negative count (it still shapes the false-positive cost of later rows).
  A window that starts inside it keeps its full geometry; only rows from the end of the
  probationary period on can detect it, and the perfect detector fires at the first of
  those. (No window in the NAB data overlaps a probationary period.)
- A flag after a one-row window would divide by ``width - 1 = 0``; the divisor is taken as
  1 there, i.e. distance is counted in rows.
- Timestamps must be non-decreasing (NAB files repeat a timestamp at a DST change); a
  window covers every row whose timestamp lies in ``[start, end]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Distance (in window widths) after which a false positive costs the full weight.
_FAR = 3.0


@dataclass(frozen=True)
class Profile:
    """Weights of one NAB cost profile."""

    name: str
    tp: float
    fp: float
    fn: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP": Profile("reward_low_FP", tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN": Profile("reward_low_FN", tp=1.0, fp=0.11, fn=2.0),
}


@dataclass(frozen=True, eq=False)
class ScoredFile:
    """One series as the evaluator sees it: a detector's scores and the labelled windows.

    ``windows`` are inclusive row ranges ``(first, last)``, sorted and disjoint; build them
    from timestamps with `window_rows`.
    """

    name: str
    timestamps: npt.NDArray[np.datetime64]
    scores: FloatArray
    windows: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.scores.ndim != 1 or len(self.timestamps) != n:
            raise ValueError(f"{self.name}: {n} scores for {len(self.timestamps)} timestamps")
        if n and not np.all(np.isfinite(self.scores)):
            raise ValueError(f"{self.name}: scores contain NaN or infinity")
        if n and (self.scores.min() < 0.0 or self.scores.max() > 1.0):
            raise ValueError(f"{self.name}: scores must lie in [0, 1]")
        previous_last = -1
        for first, last in self.windows:
            if not previous_last < first <= last < n:
                raise ValueError(f"{self.name}: bad window rows ({first}, {last})")
            previous_last = last


@dataclass(frozen=True)
class FileResult:
    """What one threshold earned on one file; counts feed the per-file table."""

    name: str
    score: float
    tp_windows: int
    fn_windows: int
    fp_detections: int
    delays_rows: tuple[int, ...]
    delays_seconds: tuple[float, ...]


@dataclass(frozen=True)
class CorpusResult:
    """A threshold's NAB score over many files, plus the plainer metrics people ask for.

    Precision is per event: each detected window is one true event and each flagged row
    outside every window is one false event (NAB charges every such row), so
    ``precision = tp_windows / (tp_windows + fp_detections)``. Recall is the share of
    scored windows detected. Delays run from a window's first row to its first detection,
    averaged over detected windows. Undefined ratios are NaN.
    """

    profile: str
    threshold: float
    score: float
    raw: float
    null: float
    perfect: float
    tp_windows: int
    fn_windows: int
    fp_detections: int
    precision: float
    recall: float
    f1: float
    mean_delay_rows: float
    mean_delay_seconds: float
    files: tuple[FileResult, ...]


def probationary_rows(n_rows: int) -> int:
    """Rows at the start of a file that are learnt from but never scored."""
    return min(n_rows * 15 // 100, 750)


def scaled_sigmoid(x: FloatArray) -> FloatArray:
    """NAB's s(x) = 2 / (1 + exp(5x)) - 1, with s = -1 beyond three window widths."""
    clipped = np.minimum(x, _FAR)
    return np.where(x > _FAR, -1.0, 2.0 / (1.0 + np.exp(5.0 * clipped)) - 1.0)


_S_MINUS_ONE = float(scaled_sigmoid(np.array([-1.0]))[0])


def window_rows(
    timestamps: npt.NDArray[np.datetime64],
    windows: Sequence[tuple[np.datetime64, np.datetime64]],
) -> tuple[tuple[int, int], ...]:
    """Turn ``[start, end]`` timestamp windows into inclusive row ranges.

    Raises ValueError if the timestamps go backwards or a window holds no row.
    """
    if len(timestamps) > 1 and np.any(timestamps[1:] < timestamps[:-1]):
        raise ValueError("timestamps go backwards")
    rows = []
    for start, end in windows:
        first = int(np.searchsorted(timestamps, start, side="left"))
        last = int(np.searchsorted(timestamps, end, side="right")) - 1
        if last < first:
            raise ValueError(f"window [{start}, {end}] contains no row")
        rows.append((first, last))
    return tuple(sorted(rows))


@dataclass(frozen=True)
class _Rows:
    """Per-row worth of a detection, independent of the profile's weights.

    ``unit`` is s(p)/s(-1) inside window ``window[i] >= 0`` and s(d) (or -1) outside;
    ``start`` is the first scored row.
    """

    unit: FloatArray
    window: IntArray
    start: int


def _rows(file: ScoredFile) -> _Rows:
    n = len(file.scores)
    index = np.arange(n, dtype=np.float64)
    unit = np.full(n, -1.0)  # before any window: the full false-positive cost
    window = np.full(n, -1, dtype=np.int64)
    for k, (first, last) in enumerate(file.windows):
        width = last - first + 1
        inside = slice(first, last + 1)
        unit[inside] = scaled_sigmoid(-(last - index[inside] + 1) / width) / _S_MINUS_ONE
        window[inside] = k
        following_end = file.windows[k + 1][0] if k + 1 < len(file.windows) else n
        after = slice(last + 1, following_end)
        unit[after] = scaled_sigmoid((index[after] - last) / max(width - 1, 1))
    return _Rows(unit=unit, window=window, start=probationary_rows(n))


def _scored_windows(file: ScoredFile, start: int) -> list[tuple[int, int]]:
    return [(first, last) for first, last in file.windows if last >= start]


def _null_and_perfect(file: ScoredFile, rows: _Rows, profile: Profile) -> tuple[float, float]:
    scored = _scored_windows(file, rows.start)
    perfect = sum(profile.tp * rows.unit[max(first, rows.start)] for first, _ in scored)
    return -profile.fn * len(scored), float(perfect)


def score_file(file: ScoredFile, threshold: float, profile: Profile) -> FileResult:
    """Score one file with detections at ``score >= threshold``."""
    rows = _rows(file)
    detected = file.scores >= threshold
    detected[: rows.start] = False
    false_rows = detected & (rows.window < 0)
    total = profile.fp * float(rows.unit[false_rows].sum())
    delays_rows: list[int] = []
    delays_seconds: list[float] = []
    for first, last in _scored_windows(file, rows.start):
        hits = np.flatnonzero(detected[first : last + 1])
        if len(hits) == 0:
            total -= profile.fn
            continue
        hit = first + int(hits[0])
        total += profile.tp * float(rows.unit[hit])
        delays_rows.append(hit - first)
        gap = file.timestamps[hit] - file.timestamps[first]
        delays_seconds.append(float(gap / np.timedelta64(1, "s")))
    n_windows = len(_scored_windows(file, rows.start))
    return FileResult(
        name=file.name,
        score=total,
        tp_windows=len(delays_rows),
        fn_windows=n_windows - len(delays_rows),
        fp_detections=int(false_rows.sum()),
        delays_rows=tuple(delays_rows),
        delays_seconds=tuple(delays_seconds),
    )


def _normalise(raw: float, null: float, perfect: float) -> float:
    if perfect <= null:
        raise ValueError("no anomaly window can be scored, so the NAB score is undefined")
    return 100.0 * (raw - null) / (perfect - null)


def _bounds(files: Sequence[ScoredFile], profile: Profile) -> tuple[float, float]:
    null = perfect = 0.0
    for file in files:
        file_null, file_perfect = _null_and_perfect(file, _rows(file), profile)
        null += file_null
        perfect += file_perfect
    return null, perfect


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def score_corpus(files: Sequence[ScoredFile], threshold: float, profile: Profile) -> CorpusResult:
    """NAB score (0 = never fires, 100 = perfect) of one threshold over all files."""
    results = tuple(score_file(file, threshold, profile) for file in files)
    null, perfect = _bounds(files, profile)
    raw = sum(r.score for r in results)
    tp = sum(r.tp_windows for r in results)
    fn = sum(r.fn_windows for r in results)
    fp = sum(r.fp_detections for r in results)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    delays_rows = [d for r in results for d in r.delays_rows]
    delays_seconds = [d for r in results for d in r.delays_seconds]
    return CorpusResult(
        profile=profile.name,
        threshold=threshold,
        score=_normalise(raw, null, perfect),
        raw=raw,
        null=null,
        perfect=perfect,
        tp_windows=tp,
        fn_windows=fn,
        fp_detections=fp,
        precision=precision,
        recall=recall,
        f1=f1,
        mean_delay_rows=float(np.mean(delays_rows)) if delays_rows else math.nan,
        mean_delay_seconds=float(np.mean(delays_seconds)) if delays_seconds else math.nan,
        files=results,
    )


def sweep_threshold(files: Sequence[ScoredFile], profile: Profile) -> tuple[float, float]:
    """The single threshold that maximises the normalised score over all files together.

    Lowering the threshold past a row turns that row into a detection, and what the row
    adds to S depends only on the row itself, except inside a window where only the
    earliest detection counts. So rows are visited once, highest score first, each adding
    its change to S: a fixed amount outside windows, and inside a window the gain over
    the window's best detection so far (the earliest row earns the most). S is read off
    after each group of equal scores; that score is the threshold. Cost: one sort,
    O(N log N) for N rows in total. Ties go to the highest threshold; ``inf`` (never
    fire) wins when no threshold beats the null detector.
    """
    scores: list[FloatArray] = []
    units: list[FloatArray] = []
    windows: list[IntArray] = []
    offset = 0
    for file in files:
        rows = _rows(file)
        tail = slice(rows.start, None)
        scores.append(file.scores[tail])
        units.append(rows.unit[tail])
        windows.append(np.where(rows.window[tail] >= 0, rows.window[tail] + offset, -1))
        offset += len(file.windows)
    null, perfect = _bounds(files, profile)
    _normalise(null, null, perfect)  # fail early on a corpus without scorable windows

    all_scores = np.concatenate(scores)
    order = np.argsort(-all_scores, kind="stable")
    sorted_scores = all_scores[order]
    unit = np.concatenate(units)[order]
    window = np.concatenate(windows)[order]

    delta = np.where(window < 0, profile.fp * unit, 0.0)
    best = dict.fromkeys(np.unique(window[window >= 0]).tolist(), -profile.fn)
    positions = np.flatnonzero(window >= 0)
    values = profile.tp * unit[positions]
    for position, k, value in zip(
        positions.tolist(), window[positions].tolist(), values.tolist(), strict=True
    ):
        if value > best[k]:
            delta[position] = value - best[k]
            best[k] = value

    totals = null + np.cumsum(delta)
    group_ends = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    candidates = np.concatenate(([null], totals[group_ends]))
    thresholds = np.concatenate(([math.inf], sorted_scores[group_ends]))
    best_index = int(np.argmax(candidates))
    return float(thresholds[best_index]), _normalise(float(candidates[best_index]), null, perfect)
