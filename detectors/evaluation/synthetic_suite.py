"""A reproducible synthetic anomaly suite: known kinds on many kinds of stream.

Every case is one stream: a base signal (sampling rate x noise type x seasonality), one
anomaly kind from `anomaly_kinds` placed after the stream has seen most of its history,
and optionally an earlier large anomaly three days before it. Everything follows from
the case's name and the suite seed, so two machines generate the same bytes.

Labels are windows ``[start, end]`` in event-time milliseconds: the anomaly's span plus
a short tail for late alerts (half an hour, at least three sampling intervals). A case
has one *target* window (the kind being measured); an earlier large anomaly, and the
20-sigma spikes that the moderate-spike kind needs, get their own windows so alerts
there are not counted as false, but only the target counts for the kind's recall.
``normal`` cases have no window: they measure false alerts per stream-week.

Sizes: ``small`` (3 base signals at 5 minutes, 6 days each; the test suite runs it) and
``full`` (4 sampling rates x 3 noise types x 3 seasonalities, 14 days, 28 at one hour,
each kind with and without an earlier large anomaly).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from itertools import product

import numpy as np

from detectors.evaluation.anomaly_kinds import (
    FAILURE_MODES,
    GENERATED,
    INJECTORS,
    NEEDS_CYCLE,
    Parts,
)

SAMPLINGS = ("1min", "5min", "1h", "irregular")
NOISES = ("gaussian", "counts", "bursty")
SEASONS = ("none", "daily", "daily+weekly")
SIZES = ("small", "full")
NORMAL = "normal"
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday
HOUR_MS = 3_600_000
_INTERVAL_S = {"1min": 60.0, "5min": 300.0, "1h": 3600.0, "irregular": 300.0}
_LEVEL_SIGMA_AMPLITUDE = {
    "gaussian": (100.0, 5.0, 25.0),
    "counts": (30.0, float(np.sqrt(30.0)), 15.0),
    "bursty": (100.0, 5.0, 25.0),
}


@dataclass(frozen=True)
class BaseSignal:
    """What a stream looks like when nothing is wrong."""

    sampling: str
    noise: str
    season: str

    @property
    def name(self) -> str:
        return f"{self.sampling}-{self.noise}-{self.season}"

    @property
    def interval_s(self) -> float:
        """Mean time between events."""
        return _INTERVAL_S[self.sampling]


@dataclass(frozen=True)
class Case:
    """One stream of the suite."""

    kind: str
    base: BaseSignal
    prior: bool  # an earlier large anomaly, three days before the target
    seed: int
    days: float

    @property
    def file(self) -> str:
        """``<base>/<kind>[_prior]-<seed>.csv``: the NAB layout's category and file."""
        return f"{self.base.name}/{self.kind}{'_prior' if self.prior else ''}-{self.seed}.csv"


@dataclass
class SuiteSeries:
    """A generated case: event times, values [T, F], and the labelled windows (ms)."""

    case: Case
    ts_ms: np.ndarray
    values: np.ndarray
    windows: list[tuple[int, int]] = field(default_factory=list)
    target: int = -1  # index into windows of the measured anomaly; -1 for normal streams


def _applicable(kind: str, base: BaseSignal) -> bool:
    if kind in NEEDS_CYCLE:
        return base.season != "none"
    if kind == "C_burst":
        return base.noise == "bursty"
    return kind != "I_young_stream"


def suite_cases(size: str, seed: int = 0) -> list[Case]:
    """Every case of a suite size, in a stable order."""
    if size not in SIZES:
        raise ValueError(f"unknown suite size {size!r}; use one of {', '.join(SIZES)}")
    kinds = (*GENERATED, *FAILURE_MODES)
    priors: tuple[bool, ...]
    young = BaseSignal("1min", "gaussian", "daily")
    if size == "small":
        bases = [BaseSignal("5min", n, s) for n, s in (("gaussian", "none"), ("gaussian", "daily"),
                                                       ("bursty", "daily"))]  # fmt: skip
        priors, normals, youngs, days = (False,), 1, 1, 6.0
    else:
        bases = [BaseSignal(*combo) for combo in product(SAMPLINGS, NOISES, SEASONS)]
        priors, normals, youngs, days = (False, True), 3, 10, 14.0
    cases = []
    for base in bases:
        length = 2 * days if base.sampling == "1h" else days
        for kind in kinds:
            if _applicable(kind, base):
                for prior in (True,) if kind == "D_after_large" else priors:
                    cases.append(Case(kind, base, prior, seed, length))
        cases += [Case(NORMAL, base, False, seed + i, length) for i in range(normals)]
    cases += [Case("I_young_stream", young, False, seed + i, 1.2) for i in range(youngs)]
    return cases


def _rng(case: Case, salt: str = "") -> np.random.Generator:
    return np.random.default_rng([case.seed, zlib.crc32(f"{case.file}{salt}".encode())])


def _times(case: Case, rng: np.random.Generator) -> np.ndarray:
    """Event times in hours since the start: fixed steps, or exponential gaps (>= 10 s)."""
    seconds = case.days * 86_400.0
    if case.base.sampling != "irregular":
        return np.arange(0.0, seconds, case.base.interval_s) / 3600.0
    gaps = np.round(10.0 + rng.exponential(case.base.interval_s - 10.0, int(seconds / 250)))
    stamps = np.concatenate(([0.0], np.cumsum(gaps)))
    return stamps[stamps < seconds] / 3600.0


def _parts(case: Case, rng: np.random.Generator) -> Parts:
    hours = _times(case, rng)
    level, sigma, amplitude = _LEVEL_SIGMA_AMPLITUDE[case.base.noise]
    if case.base.season == "none":
        amplitude = 0.0
    n = len(hours)
    parts = Parts(
        hours=hours,
        level=np.full(n, level),
        cycle=np.zeros(n),
        gain=np.ones(n),
        forced=np.full(n, np.nan),
        added=np.zeros(n),
        sigma=sigma,
        amplitude=amplitude,
        weekly=case.base.season == "daily+weekly",
    )
    parts.cycle = parts.cycle_at(hours)
    if case.base.noise == "bursty":  # ordinary bursts: 0.5 an hour, Pareto heights >= 3 sigma
        gaps = np.diff(hours, prepend=hours[0] - case.base.interval_s / 3600.0)
        hit = rng.random(n) < 1.0 - np.exp(-0.5 * gaps)
        heights = np.minimum((rng.pareto(1.5, n) + 1.0) * 3.0, 60.0) * sigma
        parts.added += np.where(hit, heights, 0.0)
    return parts


def _assemble(parts: Parts, noise: str, rng: np.random.Generator) -> np.ndarray:
    """The parts -> one value per event, with the base signal's own noise."""
    mean = parts.level + parts.cycle
    if noise == "counts":
        rate = np.maximum(mean + parts.added, 0.5)
        drawn = rate + parts.gain * (rng.poisson(rate) - rate)
        values = np.maximum(np.round(drawn), 0.0)
    else:
        values = mean + parts.added + parts.gain * parts.sigma * rng.standard_normal(len(mean))
    return np.where(np.isnan(parts.forced), values, parts.forced)


def _target_hour(case: Case, rng: np.random.Generator) -> float:
    if case.kind == "I_young_stream":
        return 19.0 + float(rng.integers(0, 3))
    return float(np.floor(case.days * 0.65) * 24 + rng.integers(0, 24))


def _window(case: Case, span: tuple[float, float]) -> tuple[int, int]:
    pad = max(0.5, 3.0 * case.base.interval_s / 3600.0)
    return START_MS + round(span[0] * HOUR_MS), START_MS + round((span[1] + pad) * HOUR_MS)


def _modes(parts: Parts, at: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mode correlation: both channels jump between two modes together (3 sigmas apart,
    a jump every 6 hours on average); for 6 hours channel 2 takes the other mode. Each
    channel alone looks as usual; only their agreement breaks. -> the level offsets of
    channel 1 and channel 2."""
    gaps = np.diff(parts.hours, prepend=0.0)
    mode = np.cumsum(rng.random(len(gaps)) < 1.0 - np.exp(-gaps / 6.0)) % 2
    flipped = np.where(parts.span(at, 6.0), 1 - mode, mode)
    return 3.0 * parts.sigma * mode, 3.0 * parts.sigma * flipped


def generate_case(case: Case) -> SuiteSeries:
    """Build one case's stream and its labels, deterministically from the case alone."""
    rng = _rng(case)
    parts = _parts(case, rng)
    windows: list[tuple[int, int]] = []
    at = _target_hour(case, rng)
    if case.kind == "B_daily_spike":
        for day in range(int(np.ceil(case.days))):
            if parts.hours[-1] >= day * 24 + 3:
                INJECTORS["extremum"](parts, day * 24 + 3.0, rng)  # the usual 03:00 spike
    if case.kind == "H_moderate_spike":
        for frac in (0.25, 0.35, 0.45):
            big = float(np.floor(case.days * 24 * frac))
            i = int(np.flatnonzero(parts.span(big, 0.0))[0])
            parts.added[i] += 20.0 * parts.sigma
            windows.append(_window(case, (parts.hours[i], parts.hours[i])))
    if case.prior:
        before = at - min(72.0, at - 24.0)
        parts.level[parts.span(before, 2.0)] += 20.0 * parts.sigma
        windows.append(_window(case, (before, before + 2.0)))
    modes = None
    if case.kind == NORMAL:
        target = -1
    else:
        if case.kind == "mode_correlation":
            modes = _modes(parts, at, rng)
            parts.level += modes[0]
        windows.append(_window(case, INJECTORS[case.kind](parts, at, rng)))
        target = len(windows) - 1
    ts_ms = START_MS + np.round(parts.hours * HOUR_MS).astype(np.int64)
    columns = [_assemble(parts, case.base.noise, rng)]
    if modes is not None:
        parts.level += modes[1] - modes[0]
        columns.append(_assemble(parts, case.base.noise, _rng(case, "channel 2")))
    order = np.argsort([w[0] for w in windows], kind="stable")
    windows = [windows[i] for i in order]
    target = int(np.flatnonzero(order == target)[0]) if target >= 0 else -1
    return SuiteSeries(case, ts_ms, np.stack(columns, axis=1).astype(np.float64), windows, target)
