"""A reproducible multivariate suite: machines whose sensors move together, and anomalies
that break one sensor or the way it moves with the others.

A machine is one stream with F sensors sampled every ``interval_s``. Its sensors follow
two shared latent drivers — the machine's *load* (a daily duty cycle plus a slow random
walk back to its mean) and the *ambient* temperature (a slower daily swing plus its own
slow wander) — each sensor a fixed mix of the two, seen through its own lag (a pressure
follows the load at once, a thermocouple minutes later), gain, offset and noise. So every
sensor alone wanders over a wide range, and what is normal is mostly how the sensors
move *together*: the ground a multivariate detector is for.

The anomaly kinds each change one sensor (the *culprit*, chosen from the case's seed),
from the onset at ~65% of the stream:

- ``correlation_break``: for two hours the culprit moves against the others: every
  change its relation to the drivers makes since the onset, it makes with the opposite
  sign, so alone it stays in its usual range and pace (vibration falling while the
  current rises);
- ``sensor_shift``: the culprit is offset by 1.5 of its own overall standard deviations
  (inside its usual range, outside its usual relation to the others) for two hours;
- ``sensor_freeze``: the culprit repeats its onset value for two hours (a stuck reading);
- ``sensor_noise``: the culprit's noise is five times larger for two hours;
- ``degradation``: bearing wear — the culprit creeps up linearly over six hours to two
  overall standard deviations above its relation, and stays there to the end.

``normal`` machines have nothing wrong: they measure false alarms. Every case follows
from its name and the seed, so two machines generate the same bytes. Labels are a window
``[start, end]`` in event-time ms (the anomaly's span plus 15 minutes for late alerts).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

KINDS = ("correlation_break", "sensor_shift", "sensor_freeze", "sensor_noise", "degradation")
NORMAL = "normal"
SIZES = ("small", "full")
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
_SPAN_HOURS = {"degradation": 6.0}  # every other kind lasts two hours
_LATE_MS = 15 * 60_000  # alerts this long after an anomaly's end still count as found


@dataclass(frozen=True)
class MachineCase:
    """One machine of the suite."""

    kind: str
    sensors: int
    seed: int
    days: float
    interval_s: float

    @property
    def file(self) -> str:
        """``machines-<F>/<kind>-<seed>.csv``: the NAB layout's category and file."""
        return f"machines-{self.sensors}/{self.kind}-{self.seed}.csv"


@dataclass
class MachineSeries:
    """A generated machine: event times [T], values [T, F], its window and its culprit."""

    case: MachineCase
    ts_ms: np.ndarray
    values: np.ndarray
    window: tuple[int, int] | None  # None for a normal machine
    culprit: int  # the broken sensor's column; -1 for a normal machine

    def labels(self) -> np.ndarray:
        """[T] bool: the rows inside the labelled window (point-wise ground truth)."""
        if self.window is None:
            return np.zeros(len(self.ts_ms), bool)
        return (self.ts_ms >= self.window[0]) & (self.ts_ms <= self.window[1])


def machine_cases(size: str, widths: tuple[int, ...] = (4, 8), seed: int = 0) -> list[MachineCase]:
    """Every case of a suite size, in a stable order: each kind on machines of each width.

    ``small`` (one machine per kind and a normal one, 4 sensors, one day at 30 s: the test
    suite runs it); ``full`` (four machines per kind and width, eight normal ones per
    width, three days at 10 s)."""
    if size not in SIZES:
        raise ValueError(f"unknown suite size {size!r}; use one of {', '.join(SIZES)}")
    if size == "small":
        return [MachineCase(k, 4, seed, 1.0, 30.0) for k in (*KINDS, NORMAL)]
    cases = []
    for width in widths:
        for kind in KINDS:
            cases += [MachineCase(kind, width, seed + i, 3.0, 10.0) for i in range(4)]
        cases += [MachineCase(NORMAL, width, seed + i, 3.0, 10.0) for i in range(8)]
    return cases


def _rng(case: MachineCase, salt: str = "") -> np.random.Generator:
    return np.random.default_rng([case.seed, zlib.crc32(f"{case.file}{salt}".encode())])


def _wander(rng: np.random.Generator, n: int, step_s: float, tau_s: float) -> np.ndarray:
    """An Ornstein-Uhlenbeck path with unit stationary spread and time constant tau_s."""
    keep = np.exp(-step_s / tau_s)
    shocks = rng.standard_normal(n) * np.sqrt(1.0 - keep * keep)
    path = np.empty(n)
    level = rng.standard_normal()
    for i in range(n):  # a recurrence: each step needs the one before
        level = keep * level + shocks[i]
        path[i] = level
    return path


def _drivers(hours: np.ndarray, rng: np.random.Generator, step_s: float) -> np.ndarray:
    """[T, 2]: load (duty cycle by day, busy 08-18h, plus a 30-min wander) and ambient
    temperature (a daily swing peaking mid-afternoon plus a 3-hour wander)."""
    day = (hours % 24.0) / 24.0
    duty = 1.0 / (1.0 + np.exp(-12.0 * (0.25 - np.abs(day - 0.54))))
    load = 2.0 * duty + 0.6 * _wander(rng, len(hours), step_s, 1800.0)
    ambient = np.sin(2.0 * np.pi * (day - 0.375)) + 0.4 * _wander(rng, len(hours), step_s, 10800.0)
    return np.stack([load, ambient], axis=1)


def _lagged(signal: np.ndarray, lag_steps: int) -> np.ndarray:
    """The signal ``lag_steps`` events late (the first value held before it starts)."""
    if lag_steps <= 0:
        return signal
    return np.concatenate([np.full(lag_steps, signal[0]), signal[:-lag_steps]])


def generate_machine(case: MachineCase) -> MachineSeries:
    """Build one machine's sensors and its label, deterministically from the case alone."""
    rng = _rng(case)
    n = int(case.days * 86_400.0 / case.interval_s)
    hours = np.arange(n) * case.interval_s / 3600.0
    drivers = _drivers(hours, rng, case.interval_s)
    f = case.sensors
    mix = rng.dirichlet([1.0, 1.0], size=f)  # each sensor's share of load and ambient
    lags = (rng.uniform(0.0, 600.0, f) / case.interval_s).astype(int)  # up to ten minutes
    gains = rng.uniform(2.0, 20.0, f) * rng.choice([-1.0, 1.0], f)
    offsets = rng.uniform(10.0, 100.0, f)
    relation = np.stack([_lagged(drivers @ mix[k], lags[k]) for k in range(f)], axis=1)
    signal = offsets + gains * relation
    noise_sd = 0.1 * np.abs(gains)  # a tenth of a driver unit: the relation dominates
    noise = rng.standard_normal((n, f)) * noise_sd
    if case.kind == NORMAL:
        return MachineSeries(case, _stamps(hours), signal + noise, None, -1)

    culprit = int(rng.integers(0, f))
    onset = float(np.floor(case.days * 24.0 * 0.65) + rng.uniform(0.0, 6.0))
    span = _SPAN_HOURS.get(case.kind, 2.0)
    inside = (hours >= onset) & (hours < onset + span)
    spread = float(signal[:, culprit].std())
    column = signal[:, culprit]
    if case.kind == "correlation_break":
        first = int(np.flatnonzero(inside)[0])
        column = np.where(inside, 2.0 * column[first] - column, column)
    elif case.kind == "sensor_shift":
        column = np.where(inside, column + 1.5 * spread, column)
    elif case.kind == "sensor_freeze":
        first = int(np.flatnonzero(inside)[0])
        stuck = column[first] + noise[first, culprit]
        noise[inside, culprit] = 0.0
        column = np.where(inside, stuck, column)
    elif case.kind == "sensor_noise":
        noise[inside, culprit] *= 5.0
    elif case.kind == "degradation":
        creep = np.clip((hours - onset) / span, 0.0, 1.0) * 2.0 * spread
        column = column + np.where(hours >= onset, creep, 0.0)
        inside = hours >= onset  # worn stays worn
    else:
        raise ValueError(f"unknown machine anomaly kind {case.kind!r}")
    signal[:, culprit] = column
    ts_ms = _stamps(hours)
    start, last = int(ts_ms[inside][0]), int(ts_ms[inside][-1])
    return MachineSeries(case, ts_ms, signal + noise, (start, last + _LATE_MS), culprit)


def _stamps(hours: np.ndarray) -> np.ndarray:
    return START_MS + np.round(hours * 3_600_000.0).astype(np.int64)
