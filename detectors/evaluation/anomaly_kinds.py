"""The anomaly kinds of the synthetic suite: each one changes one part of a stream.

A stream is built from separate parts (`Parts`: a level path, a seasonal cycle, a noise
gain, values forced to a constant, added bursts), so an anomaly changes exactly what its
name says and nothing else: a frequency anomaly speeds up the cycle and leaves the level
alone; a variance anomaly scales the noise and leaves the mean alone. `synthetic_suite`
assembles the parts into values afterwards, with the stream's own noise.

The ten kinds GutenTAG generates (amplitude, extremum, frequency, mean, pattern, pattern
shift, platform, trend, variance, mode correlation) are written from their descriptions,
and the nine failure modes A-I of issue 12 as the situations that issue describes. Sizes
are in units of the stream's noise spread (`Parts.sigma`) so they mean the same on every
base signal. Each `inject` returns the anomaly's span in hours ``(start, end)``; the
suite labels a window from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: The kinds GutenTAG generates, and the failure modes of issue 12.
GENERATED = (
    "amplitude",
    "extremum",
    "frequency",
    "mean",
    "pattern",
    "pattern_shift",
    "platform",
    "trend",
    "variance",
    "mode_correlation",
)
FAILURE_MODES = (
    "A_freeze",
    "B_daily_spike",
    "C_burst",
    "D_after_large",
    "E_drift",
    "F_burst_density",
    "G_buildup",
    "H_moderate_spike",
    "I_young_stream",
)
#: Kinds that change a cycle, so they exist only on seasonal base signals.
NEEDS_CYCLE = frozenset({"amplitude", "frequency", "pattern", "pattern_shift"})


def daily_shape(hours: np.ndarray, speed: float = 1.0) -> np.ndarray:
    """A day's shape in [-1.3, 1.3]: a sine with a harmonic, low at night, high by day."""
    phase = 2.0 * np.pi * (hours * speed - 9.0) / 24.0
    return np.sin(phase) + 0.3 * np.sin(2.0 * phase)


@dataclass
class Parts:
    """One stream being built; every array has one entry per event."""

    hours: np.ndarray  # event time, hours since the stream's start (a Monday, 00:00 UTC)
    level: np.ndarray  # the mean path without the cycle
    cycle: np.ndarray  # the seasonal part (zeros without seasonality)
    gain: np.ndarray  # multiplier on the noise
    forced: np.ndarray  # NaN, or a value the stream is frozen at (no noise)
    added: np.ndarray  # spikes and bursts added on top of everything
    sigma: float  # the noise spread: the unit of every anomaly size
    amplitude: float  # the daily amplitude (0 without seasonality)
    weekly: bool

    def cycle_at(self, hours: np.ndarray, speed: float = 1.0) -> np.ndarray:
        """The clean cycle at these times (weekends at 40% amplitude when weekly)."""
        shape = daily_shape(hours, speed) * self.amplitude
        if self.weekly:
            weekend = np.floor(hours / 24.0) % 7 >= 5
            shape = np.where(weekend, 0.4 * shape, shape)
        return shape

    def span(self, start: float, duration: float) -> np.ndarray:
        """Events in ``[start, start + duration)`` hours (at least the first one at start)."""
        inside = (self.hours >= start) & (self.hours < start + duration)
        if not inside.any():
            inside[min(int(np.searchsorted(self.hours, start)), len(self.hours) - 1)] = True
        return inside


Injector = Callable[[Parts, float, np.random.Generator], tuple[float, float]]


def _ramp(parts: Parts, inside: np.ndarray, start: float, duration: float) -> np.ndarray:
    """0 -> 1 across the span (per event, by time)."""
    return np.clip((parts.hours[inside] - start) / max(duration, 1e-9), 0.0, 1.0)


def spike(parts: Parts, at: float, height: float) -> tuple[float, float]:
    """One event ``height`` sigmas above its usual value."""
    i = int(np.flatnonzero(parts.span(at, 0.0))[0])
    parts.added[i] += height * parts.sigma
    return parts.hours[i], parts.hours[i]


def amplitude(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """For a day the cycle swings 2.5 times as wide."""
    inside = parts.span(at, 24.0)
    parts.cycle[inside] *= 2.5
    return at, at + 24.0


def extremum(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """A single event far outside the usual range."""
    return spike(parts, at, 7.0)


def frequency(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """For 12 hours the cycle runs three times as fast (values stay in range)."""
    inside = parts.span(at, 12.0)
    parts.cycle[inside] = parts.cycle_at(parts.hours[inside], speed=3.0)
    return at, at + 12.0


def mean(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """For 6 hours the level sits 4 sigmas higher, shape unchanged."""
    parts.level[parts.span(at, 6.0)] += 4.0 * parts.sigma
    return at, at + 6.0


def pattern(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """For a day the cycle is a square wave of the same amplitude (a day of another shape)."""
    inside = parts.span(at, 24.0)
    parts.cycle[inside] = np.sign(parts.cycle_at(parts.hours[inside])) * parts.amplitude * 0.8
    return at, at + 24.0


def pattern_shift(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """For a day the cycle runs 8 hours late, faded in and out over an hour each way."""
    inside = parts.span(at, 24.0)
    h = parts.hours[inside]
    fade = np.clip(np.minimum(h - at, at + 24.0 - h), 0.0, 1.0)
    late = parts.cycle_at(h - 8.0)
    parts.cycle[inside] = (1.0 - fade) * parts.cycle[inside] + fade * late
    return at, at + 24.0


def platform(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """For 6 hours the stream holds one constant value, 2 sigmas above its level."""
    inside = parts.span(at, 6.0)
    parts.forced[inside] = parts.level[inside][0] + 2.0 * parts.sigma
    return at, at + 6.0


def trend(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """Over 4 hours the level climbs 6 sigmas, then falls back."""
    inside = parts.span(at, 4.0)
    parts.level[inside] += 6.0 * parts.sigma * _ramp(parts, inside, at, 4.0)
    return at, at + 4.0


def variance(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """For 6 hours the noise is four times as wide, the mean unchanged."""
    parts.gain[parts.span(at, 6.0)] *= 4.0
    return at, at + 6.0


def freeze(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """A: for 4 hours the stream freezes at its clean value: mid-range, just no movement."""
    inside = parts.span(at, 4.0)
    first = int(np.flatnonzero(inside)[0])
    parts.forced[inside] = parts.level[first] + parts.cycle[first]
    return at, at + 4.0


def off_schedule_spike(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """B: the stream has a narrow spike at 03:00 every day (normal); this one comes at 15:00.

    Its daily spikes are added by the suite for this kind; one alert a day there counts as
    false alerts of this kind's streams.
    """
    day_start = np.floor(at / 24.0) * 24.0
    return spike(parts, day_start + 15.0, 8.0)


def big_burst(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """C: on a bursty stream, one burst three times its largest ordinary burst so far."""
    before = parts.added[parts.hours < at]
    largest = float(before.max()) if before.size else 0.0
    return spike(parts, at, max(3.0 * largest / parts.sigma, 10.0))


def after_large(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """D: a moderate mean shift (5 sigmas, 3 hours) some days after a large anomaly.

    The large one is added by the suite (every kind has a variant with it); this kind
    always has it.
    """
    parts.level[parts.span(at, 3.0)] += 5.0 * parts.sigma
    return at, at + 3.0


def drift(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """E: over 12 hours the level drifts 4 sigmas up, then stays there 12 hours."""
    inside = parts.span(at, 24.0)
    parts.level[inside] += 4.0 * parts.sigma * _ramp(parts, inside, at, 12.0)
    return at, at + 24.0


def burst_density(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """F: for 6 hours, bursts of ordinary height (3-5 sigmas) arrive four times an hour."""
    inside = np.flatnonzero(parts.span(at, 6.0))
    gaps = np.diff(parts.hours, prepend=parts.hours[0])[inside]
    hit = rng.random(len(inside)) < 1.0 - np.exp(-4.0 * np.maximum(gaps, 1.0 / 60.0))
    parts.added[inside[hit]] += rng.uniform(3.0, 5.0, int(hit.sum())) * parts.sigma
    return at, at + 6.0


def buildup(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """G: over 8 hours the level builds up (quadratically) to 10 sigmas, then drops.

    Its window covers only the first 60% of the build-up (up to 3.6 sigmas): found means
    found before the peak.
    """
    inside = parts.span(at, 8.0)
    parts.level[inside] += 10.0 * parts.sigma * _ramp(parts, inside, at, 8.0) ** 2
    return at, at + 0.6 * 8.0


def moderate_spike(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """H: a 7-sigma spike on a stream that has shown 20-sigma ones (added by the suite)."""
    return spike(parts, at, 7.0)


def young_shift(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """I: on a stream younger than its first full day, the level rises 5 sigmas for an hour."""
    parts.level[parts.span(at, 1.0)] += 5.0 * parts.sigma
    return at, at + 1.0


def mode_flip(parts: Parts, at: float, rng: np.random.Generator) -> tuple[float, float]:
    """Mode correlation: placeholder on the univariate parts; the suite flips channel 2."""
    return at, at + 6.0


INJECTORS: dict[str, Injector] = {
    "amplitude": amplitude,
    "extremum": extremum,
    "frequency": frequency,
    "mean": mean,
    "pattern": pattern,
    "pattern_shift": pattern_shift,
    "platform": platform,
    "trend": trend,
    "variance": variance,
    "mode_correlation": mode_flip,
    "A_freeze": freeze,
    "B_daily_spike": off_schedule_spike,
    "C_burst": big_burst,
    "D_after_large": after_large,
    "E_drift": drift,
    "F_burst_density": burst_density,
    "G_buildup": buildup,
    "H_moderate_spike": moderate_spike,
    "I_young_stream": young_shift,
}
