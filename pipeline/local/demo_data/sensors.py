"""Pump sensors for `vigil demo`: temperature (°C), vibration (mm/s) and pressure (bar)
driven by one shared load, so they are correlated, with spikes, level shifts, stuck
sensors, bearing wear and a broken correlation injected in the second half.

    {"stream": "pump-007", "ts": 1763604000000,
     "values": {"temp": 61.3, "vibration": 2.114, "pressure": 4.872}}
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.local.demo_data.columns import (
    DEFAULT_STEP_MS,
    DEMO_START_MS,
    Columns,
    FloatArray,
    InjectedAnomaly,
    daytime,
    late_start,
    pick_streams,
    slot_grid,
    window,
)

_SENSOR_FEATURES = ("temp", "vibration", "pressure")


def _rounded(x: FloatArray, decimals: int) -> FloatArray:
    """Readings as an instrument reports them; also makes a stuck sensor exactly flat."""
    return np.round(x, decimals)


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float, scale: float) -> FloatArray:
    """Slowly wandering noise, as real process values have, rather than white noise."""
    shocks = rng.normal(0.0, scale * math.sqrt(1 - phi * phi), shape)
    out = np.empty(shape)
    out[:, 0] = rng.normal(0.0, scale, shape[0])
    for s in range(1, shape[1]):
        out[:, s] = phi * out[:, s - 1] + shocks[:, s]
    return out


def sensor_columns(
    n_pumps: int,
    steps: int,
    seed: int,
    start_ms: int = DEMO_START_MS,
    step_ms: int = DEFAULT_STEP_MS,
) -> tuple[Columns, list[InjectedAnomaly]]:
    rng, shape, slot_ms = slot_grid(n_pumps, "pumps", steps, seed, 2, start_ms, step_ms)
    progress = np.arange(steps) / (steps - 1)

    # A shared latent load drives all three features, which makes them correlated.
    load = np.clip(0.4 + 0.55 * daytime(slot_ms) + _ar1(rng, shape, 0.9, 0.05), 0.0, 1.2)
    temp0 = rng.uniform(45.0, 60.0, n_pumps)[:, None]  # °C
    vib0 = rng.uniform(1.2, 2.8, n_pumps)[:, None]  # mm/s RMS, healthy per ISO 10816
    pres0 = rng.uniform(3.0, 7.0, n_pumps)[:, None]  # bar
    temp_drift = rng.uniform(0.0, 1.5, n_pumps)[:, None]  # °C over the window (fouling)
    temp = temp0 + 8.0 * load + temp_drift * progress + _ar1(rng, shape, 0.7, 0.3)
    vibration = vib0 * (0.6 + 0.5 * load) * np.exp(rng.normal(0.0, 0.05, shape))
    pressure = pres0 * (0.85 + 0.25 * load - 0.02 * progress) + rng.normal(0.0, 0.03, shape)
    features: dict[str, FloatArray] = {"temp": temp, "vibration": vibration, "pressure": pressure}

    names = [f"pump-{i:03d}" for i in range(n_pumps)]
    kinds = ("spike", "level_shift", "stuck_sensor", "bearing_wear", "correlation_break")
    n_anomalous = min(n_pumps, max(len(kinds), round(0.3 * n_pumps)))
    counts = {
        k: n_anomalous // len(kinds) + (i < n_anomalous % len(kinds)) for i, k in enumerate(kinds)
    }
    anomalies = []
    for p, scenario in pick_streams(rng, n_pumps, counts):
        if scenario == "spike":
            # A transient: cavitation knock, a pressure dip or a hot reading for a slot or two.
            length = int(rng.integers(1, 3))
            run = slice(s0 := late_start(rng, steps, length), s0 + length)
            target = ("temp", "vibration", "pressure")[int(rng.integers(0, 3))]
            if target == "temp":
                temp[p, run] += rng.uniform(12.0, 20.0)
            elif target == "vibration":
                vibration[p, run] *= rng.uniform(4.0, 7.0)
            else:
                pressure[p, run] *= rng.uniform(0.3, 0.5)
        elif scenario == "level_shift":
            # A partly closed valve downstream: pressure drops and stays down.
            length = steps - (s0 := late_start(rng, steps, 0))
            pressure[p, s0:] *= rng.uniform(0.7, 0.8)
        elif scenario == "stuck_sensor":
            # The transmitter freezes: a flat line at its last reading, then recovers.
            length = int(rng.integers(18, 49))
            s0 = late_start(rng, steps, length)
            target = ("temp", "pressure")[int(rng.integers(0, 2))]
            features[target][p, s0 : s0 + length] = features[target][p, s0 - 1]
        elif scenario == "bearing_wear":
            # Wear builds slowly: vibration ramps up to 3-4x, friction warms the casing.
            s0 = int(rng.integers(steps * 2 // 5, steps * 3 // 5))
            length = steps - s0
            ramp = (np.arange(length) / max(length - 1, 1)) ** 1.5
            vibration[p, s0:] *= 1.0 + rng.uniform(2.0, 3.0) * ramp
            temp[p, s0:] += 4.0 * ramp
        else:
            # Pressure stops following load (e.g. a failing control loop) while each feature
            # stays within its usual range: only the relationship is wrong.
            length = int(rng.integers(24, 61))
            run = slice(s0 := late_start(rng, steps, length), s0 + length)
            mirrored = 2 * load[p].mean() - load[p, run]
            pressure[p, run] = pres0[p, 0] * (0.85 + 0.25 * mirrored) + rng.normal(0, 0.03, length)
        anomalies.append(window(names[p], slot_ms, s0, s0 + length - 1, step_ms, scenario, False))

    decimals = {"temp": 2, "vibration": 3, "pressure": 3}
    columns = Columns(
        streams=names,
        stream_idx=np.repeat(np.arange(n_pumps, dtype=np.int64), steps),
        tick=np.tile(np.arange(steps, dtype=np.int64), n_pumps),
        ts_ms=np.tile(slot_ms, n_pumps),
        values={
            name: _rounded(np.maximum(features[name], 0.0), decimals[name]).ravel()
            for name in _SENSOR_FEATURES
        },
    )
    return columns.sorted_by_time(), anomalies
