"""Mackey-Glass series with MGAB-style anomalies, generated here (nothing downloaded).

The Mackey-Glass equation dx/dt = beta x(t - tau) / (1 + x(t - tau)^n) - gamma x(t) is a
delay differential equation whose solution is chaotic for tau = 17 and above: smooth,
never repeating, predictable a short way ahead only by a model that learnt the dynamics.
It is integrated here with a fixed-step Runge-Kutta (the delayed term linearly
interpolated from the stored past) and sampled once per time unit.

Anomalies as MGAB's authors make them: a stretch of the series is cut out and the ends
stitched where value and slope nearly match, so nothing jumps; only the continuation is
wrong for the dynamics. Each anomaly is labelled with a window centred on the stitch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MackeyGlass:
    tau: float = 18.0
    n: float = 10.0
    beta: float = 0.25
    gamma: float = 0.1
    dt: float = 0.1  # integration step, in time units; samples are one time unit apart


def integrate(length: int, params: MackeyGlass | None = None, seed: int = 0) -> np.ndarray:
    """``length`` samples, one per time unit, after a discarded transient of 500 units."""
    p = params or MackeyGlass()
    per_unit = round(1.0 / p.dt)
    lag = round(p.tau / p.dt)
    burn = 500 * per_unit
    steps = burn + length * per_unit
    rng = np.random.default_rng(seed)
    x = np.empty(steps + lag + 1)
    x[: lag + 1] = 1.2 + 0.1 * rng.random()  # a constant history, slightly seeded

    def slope(now: float, delayed: float) -> float:
        return p.beta * delayed / (1.0 + delayed**p.n) - p.gamma * now

    for k in range(lag, lag + steps):
        d0, d1 = x[k - lag], x[k - lag + 1]
        dm = 0.5 * (d0 + d1)
        k1 = slope(x[k], d0)
        k2 = slope(x[k] + 0.5 * p.dt * k1, dm)
        k3 = slope(x[k] + 0.5 * p.dt * k2, dm)
        k4 = slope(x[k] + p.dt * k3, d1)
        x[k + 1] = x[k] + p.dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x[lag + burn + 1 :: per_unit][:length].copy()


def with_anomalies(
    length: int, anomalies: int, seed: int = 0, window: int = 400, noise: float = 0.01
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A series with ``anomalies`` stitched cuts in its second 80% -> (values, windows).

    Windows are inclusive row ranges of ``window`` rows centred on each stitch. Uniform
    noise in [-noise, noise] is added, as in MGAB.
    """
    rng = np.random.default_rng(seed)
    spare = 400 * anomalies
    x = integrate(length + spare, seed=seed)
    dx = np.gradient(x)
    slot = (length - length // 5 - window) // anomalies  # one anomaly per slot: no overlap
    if slot <= window:
        raise ValueError(f"{anomalies} anomalies of {window} rows do not fit in {length} rows")
    offsets = rng.integers(window // 2, slot - window // 2, anomalies)
    stitches = length // 5 + slot * np.arange(anomalies) + offsets
    keep = np.ones(len(x), bool)
    shift, windows = 0, []
    for at in stitches:
        cut = at + shift  # position in the uncut series
        lo, hi = cut + 20, cut + 300
        cost = np.abs(x[lo:hi] - x[cut]) + 5.0 * np.abs(dx[lo:hi] - dx[cut])
        jump = lo + int(np.argmin(cost))
        keep[cut + 1 : jump + 1] = False
        shift += jump - cut
        windows.append((int(at) - window // 2, int(at) + window // 2 - 1))
    values = x[keep][:length] + rng.uniform(-noise, noise, length)
    return values, windows
