"""Realistic demo data for `vigil demo`: NAB replay, card transactions and pump sensors.

This module only generates events; it does no Kafka or Redis I/O. Every event follows the
Vigil event contract (`ts` is always epoch milliseconds, an int):

    {"stream": "nab.realKnownCause.nyc_taxi", "ts": 1404172800000, "value": 10844.0}
    {"stream": "acct-00042", "ts": 1763604300000,
     "values": {"amount": 23.9, "merchant_risk": 0.041}, "merchant": "m-0193", "kind": "card"}
    {"stream": "pump-007", "ts": 1763604000000,
     "values": {"temp": 61.3, "vibration": 2.114, "pressure": 4.872}}

Extra top-level fields (`merchant`, `kind`) become the alert's `meta`.

Time and ordering. The synthetic sources share one simulated window of `steps` slots of
`step_ms` (10 minutes by default) starting at `DEMO_START_MS` (Friday 2026-11-20 00:00 UTC,
so four days cover a weekend). Each slot index is a "tick". NAB series keep their real
2011-2015 timestamps and play one row per tick, i.e. they are interleaved by row index
rather than by time: re-basing them would change the data the benchmark labels refer to.
`demo_events` therefore orders by tick: within a tick NAB rows come first (by file), then
the synthetic events in timestamp order, so the synthetic part is globally time ordered and
every stream's timestamps strictly increase.

Injected anomalies are reported as `InjectedAnomaly` windows `[start_ms, end_ms]`
(inclusive) covering the events that depart from the stream's normal behaviour; for
persistent changes (level shift, bearing wear, new spending pattern) the window runs to the
end of the stream. Benign changes (salary day, new spending pattern) are listed too, with
`benign=True`: a good detector may notice them but they are not fraud.

Generation is vectorised with numpy over (streams x slots) and deterministic for a seed;
events only become dicts when the iterator reaches them, so long demos stay small in memory.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

Event = dict[str, Any]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

NAB_DIR_ENV = "VIGIL_NAB_DIR"
DEMO_START_MS = 1_763_596_800_000  # 2026-11-20T00:00:00Z, a Friday
DEFAULT_STEP_MS = 10 * 60 * 1000
DEFAULT_STEPS = 576  # four simulated days at 10 minutes
MIN_STEPS = 100  # anomalies go in the second half, after a detector's warm-up

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_TX_KINDS = ("card", "online", "contactless")
_MERCHANTS = tuple(f"m-{i:04d}" for i in range(10_000))
_RISKY_MERCHANTS = (9_000, 10_000)  # a block of ids used only by fraudsters
_SENSOR_FEATURES = ("temp", "vibration", "pressure")


class DemoDataError(ValueError):
    """Bad demo parameters or unreadable NAB files; the message is one line for the CLI."""


@dataclass(frozen=True)
class InjectedAnomaly:
    stream: str
    start_ms: int
    end_ms: int
    kind: str
    benign: bool = False


@dataclass
class DemoData:
    """Everything a demo run needs; `events` is a one-shot iterator in playing order."""

    events: Iterator[Event]
    anomalies: list[InjectedAnomaly]
    n_streams: int
    nab_dir: Path | None = None


@dataclass
class _Columns:
    """One source's events as arrays, sorted in playing order; rows become dicts lazily.

    String fields are stored as codes into a label tuple so that a million events do not
    mean a million Python strings until they are read.
    """

    streams: list[str]
    stream_idx: IntArray
    tick: IntArray
    ts_ms: IntArray
    values: dict[str, FloatArray]
    meta: dict[str, tuple[tuple[str, ...], IntArray]] = field(default_factory=dict)
    scalar: bool = False  # True: emit {"value": x} instead of {"values": {...}}
    time_ordered: bool = True  # False for NAB: rows are interleaved by index, not by ts

    def sort(self, order: IntArray) -> _Columns:
        return _Columns(
            streams=self.streams,
            stream_idx=self.stream_idx[order],
            tick=self.tick[order],
            ts_ms=self.ts_ms[order],
            values={k: v[order] for k, v in self.values.items()},
            meta={k: (labels, codes[order]) for k, (labels, codes) in self.meta.items()},
            scalar=self.scalar,
            time_ordered=self.time_ordered,
        )

    def rows(self) -> Iterator[tuple[tuple[int, int], Event]]:
        """Yield (merge key, event). NAB's key (tick, 0) sorts before any real timestamp."""
        names = list(self.values)
        columns = [self.values[n].tolist() for n in names]
        meta = [(k, labels, codes.tolist()) for k, (labels, codes) in self.meta.items()]
        streams = self.streams
        ticks = self.tick.tolist()
        stamps = self.ts_ms.tolist()
        for i, s in enumerate(self.stream_idx.tolist()):
            event: Event = {"stream": streams[s], "ts": stamps[i]}
            if self.scalar:
                event["value"] = columns[0][i]
            else:
                event["values"] = {n: c[i] for n, c in zip(names, columns, strict=True)}
            for key, labels, codes in meta:
                event[key] = labels[codes[i]]
            yield (ticks[i], stamps[i] if self.time_ordered else 0), event

    def events(self) -> list[Event]:
        return [event for _, event in self.rows()]


# --- NAB replay ----------------------------------------------------------------------


def nab_dir_candidate(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The one folder `find_nab_dir` looks at, so a caller can say where data was missing.

    An explicit path or the environment variable is taken as the user's choice and never
    silently replaced by the default beside the repository.
    """
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(NAB_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data" / "nab-dev"


def find_nab_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The NAB folder (explicit path, else $VIGIL_NAB_DIR, else ../shared/data/nab-dev)."""
    candidate = nab_dir_candidate(explicit)
    if candidate.is_dir() and any(candidate.glob("*/*.csv")):
        return candidate
    return None


def nab_stream_name(relative_csv: str) -> str:
    """`realKnownCause/nyc_taxi.csv` -> `nab.realKnownCause.nyc_taxi` (the NAB key form)."""
    path = Path(relative_csv)
    return f"nab.{path.parent.name}.{path.stem}"


def _parse_ms(stamps: list[str], where: str) -> IntArray:
    """NAB timestamps are naive; they are read as UTC."""
    try:
        parsed = np.array([s.strip().replace(" ", "T") for s in stamps], dtype="datetime64[ms]")
    except ValueError as exc:
        raise DemoDataError(f"{where}: bad timestamp ({exc})") from None
    return parsed.astype(np.int64)


def _read_nab_csv(path: Path, max_rows: int | None) -> tuple[IntArray, FloatArray]:
    try:
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = list(itertools.islice(reader, max_rows))
    except OSError as exc:
        raise DemoDataError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DemoDataError(f"{path} is not a readable CSV file: {exc}") from None
    if header is None or [h.strip() for h in header] != ["timestamp", "value"]:
        raise DemoDataError(f"{path}: expected header 'timestamp,value'")
    if any(len(row) != 2 for row in rows):
        line = next(n for n, row in enumerate(rows, start=2) if len(row) != 2)
        raise DemoDataError(f"{path}: line {line}: expected 2 columns")
    ts = _parse_ms([row[0] for row in rows], str(path))
    try:
        values = np.array([row[1] for row in rows], dtype=np.float64)
    except ValueError:
        raise DemoDataError(f"{path}: a value is not a number") from None
    if not np.isfinite(values).all():
        raise DemoDataError(f"{path}: non-finite value")
    # A few NAB files repeat a timestamp (daylight-saving artefacts). Every row is kept, in
    # order, because NAB labels count rows; a repeat moves 1 ms after the previous row so
    # the stream's timestamps strictly increase (the worker rejects duplicates).
    index = np.arange(len(ts), dtype=np.int64)
    ts = np.maximum.accumulate(ts - index) + index
    return ts, values


def _nab_files(nab_dir: Path) -> list[Path]:
    return sorted(nab_dir.glob("*/*.csv"))


def _nab_columns(nab_dir: Path, max_rows_per_file: int | None) -> _Columns:
    files = _nab_files(nab_dir)
    if not files:
        raise DemoDataError(f"no NAB data (<category>/<file>.csv) under {nab_dir}")
    streams = [nab_stream_name(str(f.relative_to(nab_dir))) for f in files]
    parts = [_read_nab_csv(f, max_rows_per_file) for f in files]
    ts = np.concatenate([p[0] for p in parts])
    values = np.concatenate([p[1] for p in parts])
    stream_idx = np.concatenate([np.full(len(p[0]), i, np.int64) for i, p in enumerate(parts)])
    tick = np.concatenate([np.arange(len(p[0]), dtype=np.int64) for p in parts])
    columns = _Columns(
        streams=streams,
        stream_idx=stream_idx,
        tick=tick,
        ts_ms=ts,
        values={"value": values},
        scalar=True,
        time_ordered=False,
    )
    return columns.sort(np.lexsort((stream_idx, tick)))


def nab_events(nab_dir: Path, max_rows_per_file: int | None = None) -> list[Event]:
    """Every NAB series as stream `nab.<category>.<stem>`, interleaved by row index."""
    return _nab_columns(nab_dir, max_rows_per_file).events()


def nab_windows(nab_dir: Path) -> list[InjectedAnomaly]:
    """NAB's labelled windows (windows.json) as anomalies of kind `nab_window`."""
    path = nab_dir / "windows.json"
    try:
        labelled = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise DemoDataError(f"cannot read {path}: {exc}") from None
    out = []
    for relative, windows in sorted(labelled.items()):
        for start, end in windows:
            out.append(
                InjectedAnomaly(
                    nab_stream_name(relative), _iso_ms(start), _iso_ms(end), "nab_window"
                )
            )
    return out


def _iso_ms(stamp: str) -> int:
    moment = datetime.fromisoformat(stamp).replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


# --- shared calendar helpers -----------------------------------------------------------


def _check_sizes(n_streams: int, what: str, steps: int, step_ms: int, seed: int) -> None:
    if seed < 0:
        raise DemoDataError(f"seed must be a non-negative integer (got {seed})")
    if n_streams < 1:
        raise DemoDataError(f"number of {what} must be at least 1 (got {n_streams})")
    if steps < MIN_STEPS:
        raise DemoDataError(f"steps must be at least {MIN_STEPS} (got {steps})")
    if step_ms < 1000:
        raise DemoDataError(f"step must be at least 1000 ms (got {step_ms})")


def _daytime(slot_ms: IntArray) -> FloatArray:
    """0 at 04:00, 1 at 16:00 UTC: people and plants are busier by day."""
    hour = (slot_ms % _DAY_MS) / _HOUR_MS
    return 0.5 - 0.5 * np.cos(2 * np.pi * (hour - 4.0) / 24.0)


def _weekend(slot_ms: IntArray) -> NDArray[np.bool_]:
    weekday = (slot_ms // _DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return weekday >= 5


def _window(
    stream: str, slot_ms: IntArray, first: int, last: int, step_ms: int, kind: str, benign: bool
) -> InjectedAnomaly:
    return InjectedAnomaly(
        stream, int(slot_ms[first]), int(slot_ms[last]) + step_ms - 1, kind, benign
    )


def _pick_streams(
    rng: np.random.Generator, n: int, counts: dict[str, int]
) -> list[tuple[int, str]]:
    """Distinct streams for each scenario, so one stream tells one story."""
    kinds = [kind for kind, count in counts.items() for _ in range(count)][:n]
    chosen = rng.permutation(n)[: len(kinds)]
    return [(int(s), kind) for s, kind in zip(chosen, kinds, strict=True)]


def _late_start(rng: np.random.Generator, steps: int, length: int) -> int:
    """A start in the second half, leaving room for the run and a little normal data after."""
    low, high = steps // 2, max(steps // 2 + 1, int(0.9 * steps) - length)
    return int(rng.integers(low, high))


# --- transactions -------------------------------------------------------------------


def _transaction_columns(
    n_accounts: int, steps: int, seed: int, start_ms: int, step_ms: int
) -> tuple[_Columns, list[InjectedAnomaly]]:
    _check_sizes(n_accounts, "accounts", steps, step_ms, seed)
    rng = np.random.default_rng([seed, 1])
    shape = (n_accounts, steps)
    slot_ms = start_ms + np.arange(steps, dtype=np.int64) * step_ms
    day = _daytime(slot_ms)
    weekend = _weekend(slot_ms)

    # Per account: how busy it is, its typical spend (log-normal scale) and its spread.
    activity = rng.uniform(0.7, 1.0, n_accounts)[:, None]
    mu = rng.normal(np.log(35.0), 0.6, n_accounts)[:, None]
    sigma = rng.uniform(0.4, 0.9, n_accounts)[:, None]
    # Chance of a transaction in a slot: low at night, lower at weekends.
    rate = activity * (0.3 + 0.65 * day) * np.where(weekend, 0.85, 1.0)
    # Bigger baskets by day and at weekends.
    log_amount = mu + 0.3 * (day - 0.5) + 0.2 * weekend + sigma * rng.standard_normal(shape)
    risk = rng.beta(1.5, 25.0, shape)
    favourites = rng.integers(0, _RISKY_MERCHANTS[0], (n_accounts, 8))
    merchant = np.take_along_axis(favourites, rng.integers(0, 8, shape), axis=1)
    elsewhere = rng.random(shape) < 0.15
    merchant[elsewhere] = rng.integers(0, _RISKY_MERCHANTS[0], int(elsewhere.sum()))
    kind = rng.choice(len(_TX_KINDS), size=shape, p=[0.65, 0.2, 0.15])
    forced = np.zeros(shape, dtype=bool)
    draws = rng.random(shape)
    jitter = rng.integers(0, step_ms // 1000, shape) * 1000

    names = [f"acct-{i:05d}" for i in range(n_accounts)]
    counts = {
        "fraud_burst": max(1, round(0.025 * n_accounts)),
        "card_testing": max(1, round(0.015 * n_accounts)),
        "salary_day": max(1, round(0.02 * n_accounts)),
        "spending_shift": max(1, round(0.02 * n_accounts)),
    }
    anomalies = []
    for a, scenario in _pick_streams(rng, n_accounts, counts):
        benign = scenario in ("salary_day", "spending_shift")
        if scenario == "fraud_burst":
            # A stolen card: several large purchases at risky merchants within an hour.
            length = int(rng.integers(3, 7))
            run = slice(s0 := _late_start(rng, steps, length), s0 + length)
            log_amount[a, run] = mu[a, 0] + np.log(rng.uniform(12.0, 35.0, length))
            risk[a, run] = rng.uniform(0.75, 0.98, length)
            merchant[a, run] = rng.integers(*_RISKY_MERCHANTS, length)
            kind[a, run] = rng.integers(0, 2, length)  # card or online
            forced[a, run] = True
        elif scenario == "card_testing":
            # Probing a card number: a run of tiny online payments at one dubious merchant.
            length = int(rng.integers(6, 13))
            run = slice(s0 := _late_start(rng, steps, length), s0 + length)
            log_amount[a, run] = np.log(rng.uniform(0.1, 1.5, length))
            risk[a, run] = rng.uniform(0.45, 0.85, length)
            merchant[a, run] = rng.integers(*_RISKY_MERCHANTS)
            kind[a, run] = _TX_KINDS.index("online")
            forced[a, run] = True
        elif scenario == "salary_day":
            # Payday: a day of more and bigger purchases, then back to normal.
            length = min(_DAY_MS // step_ms, steps // 4)
            run = slice(s0 := _late_start(rng, steps, length), s0 + length)
            log_amount[a, run] += np.log(rng.uniform(1.8, 2.5))
            rate[a, run] *= 1.3
        else:
            # A new habit (moved house, new job): spending stays higher from here on.
            length = steps - (s0 := _late_start(rng, steps, 0))
            run = slice(s0, steps)
            log_amount[a, run] += np.log(rng.uniform(1.8, 3.0))
        anomalies.append(_window(names[a], slot_ms, s0, s0 + length - 1, step_ms, scenario, benign))

    present = (draws < np.minimum(rate, 0.95)) | forced
    stream_idx, tick = np.nonzero(present)
    amount = np.maximum(np.round(np.exp(log_amount[present]), 2), 0.01)
    columns = _Columns(
        streams=names,
        stream_idx=stream_idx.astype(np.int64),
        tick=tick.astype(np.int64),
        ts_ms=slot_ms[tick] + jitter[present],
        values={"amount": amount, "merchant_risk": np.round(risk[present], 3)},
        meta={
            "merchant": (_MERCHANTS, merchant[present].astype(np.int64)),
            "kind": (_TX_KINDS, kind[present].astype(np.int64)),
        },
    )
    return columns.sort(np.lexsort((columns.stream_idx, columns.ts_ms))), anomalies


def transaction_events(
    n_accounts: int,
    steps: int,
    seed: int,
    *,
    start_ms: int = DEMO_START_MS,
    step_ms: int = DEFAULT_STEP_MS,
) -> tuple[list[Event], list[InjectedAnomaly]]:
    """Per-account card transactions, at most one per account per slot, in time order."""
    columns, anomalies = _transaction_columns(n_accounts, steps, seed, start_ms, step_ms)
    return columns.events(), anomalies


# --- pump sensors -------------------------------------------------------------------


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


def _sensor_columns(
    n_pumps: int, steps: int, seed: int, start_ms: int, step_ms: int
) -> tuple[_Columns, list[InjectedAnomaly]]:
    _check_sizes(n_pumps, "pumps", steps, step_ms, seed)
    rng = np.random.default_rng([seed, 2])
    shape = (n_pumps, steps)
    slot_ms = start_ms + np.arange(steps, dtype=np.int64) * step_ms
    progress = np.arange(steps) / (steps - 1)

    # A shared latent load drives all three features, which makes them correlated.
    load = np.clip(0.4 + 0.55 * _daytime(slot_ms) + _ar1(rng, shape, 0.9, 0.05), 0.0, 1.2)
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
    for p, scenario in _pick_streams(rng, n_pumps, counts):
        if scenario == "spike":
            # A transient: cavitation knock, a pressure dip or a hot reading for a slot or two.
            length = int(rng.integers(1, 3))
            run = slice(s0 := _late_start(rng, steps, length), s0 + length)
            target = ("temp", "vibration", "pressure")[int(rng.integers(0, 3))]
            if target == "temp":
                temp[p, run] += rng.uniform(12.0, 20.0)
            elif target == "vibration":
                vibration[p, run] *= rng.uniform(4.0, 7.0)
            else:
                pressure[p, run] *= rng.uniform(0.3, 0.5)
        elif scenario == "level_shift":
            # A partly closed valve downstream: pressure drops and stays down.
            length = steps - (s0 := _late_start(rng, steps, 0))
            pressure[p, s0:] *= rng.uniform(0.7, 0.8)
        elif scenario == "stuck_sensor":
            # The transmitter freezes: a flat line at its last reading, then recovers.
            length = int(rng.integers(18, 49))
            s0 = _late_start(rng, steps, length)
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
            run = slice(s0 := _late_start(rng, steps, length), s0 + length)
            mirrored = 2 * load[p].mean() - load[p, run]
            pressure[p, run] = pres0[p, 0] * (0.85 + 0.25 * mirrored) + rng.normal(0, 0.03, length)
        anomalies.append(_window(names[p], slot_ms, s0, s0 + length - 1, step_ms, scenario, False))

    decimals = {"temp": 2, "vibration": 3, "pressure": 3}
    columns = _Columns(
        streams=names,
        stream_idx=np.repeat(np.arange(n_pumps, dtype=np.int64), steps),
        tick=np.tile(np.arange(steps, dtype=np.int64), n_pumps),
        ts_ms=np.tile(slot_ms, n_pumps),
        values={
            name: _rounded(np.maximum(features[name], 0.0), decimals[name]).ravel()
            for name in _SENSOR_FEATURES
        },
    )
    return columns.sort(np.lexsort((columns.stream_idx, columns.ts_ms))), anomalies


def sensor_events(
    n_pumps: int,
    steps: int,
    seed: int,
    *,
    start_ms: int = DEMO_START_MS,
    step_ms: int = DEFAULT_STEP_MS,
) -> tuple[list[Event], list[InjectedAnomaly]]:
    """Pump readings (temp °C, vibration mm/s, pressure bar), one per pump per slot."""
    columns, anomalies = _sensor_columns(n_pumps, steps, seed, start_ms, step_ms)
    return columns.events(), anomalies


# --- everything together ------------------------------------------------------------


def demo_events(
    nab_dir: Path | None,
    n_accounts: int = 1000,
    n_pumps: int = 50,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    *,
    max_nab_rows: int | None = None,
    start_ms: int = DEMO_START_MS,
    step_ms: int = DEFAULT_STEP_MS,
) -> DemoData:
    """All sources merged by tick (see the module docstring); NAB is skipped when None.

    `n_accounts` or `n_pumps` may be 0 to leave that source out.
    """
    sources: list[_Columns] = []
    anomalies: list[InjectedAnomaly] = []
    n_streams = 0
    if nab_dir is not None:
        nab = _nab_columns(nab_dir, max_nab_rows)
        sources.append(nab)
        n_streams += len(nab.streams)
        last_ts = _last_ts_per_stream(nab)
        anomalies += [w for w in nab_windows(nab_dir) if w.start_ms <= last_ts.get(w.stream, -1)]
    if n_accounts:
        tx, tx_anomalies = _transaction_columns(n_accounts, steps, seed, start_ms, step_ms)
        sources.append(tx)
        anomalies += tx_anomalies
        n_streams += n_accounts
    if n_pumps:
        pumps, pump_anomalies = _sensor_columns(n_pumps, steps, seed, start_ms, step_ms)
        sources.append(pumps)
        anomalies += pump_anomalies
        n_streams += n_pumps
    merged = heapq.merge(*(source.rows() for source in sources), key=lambda row: row[0])
    return DemoData(
        events=(event for _, event in merged),
        anomalies=anomalies,
        n_streams=n_streams,
        nab_dir=nab_dir,
    )


def _last_ts_per_stream(columns: _Columns) -> dict[str, int]:
    last = np.full(len(columns.streams), -1, dtype=np.int64)
    np.maximum.at(last, columns.stream_idx, columns.ts_ms)
    return {name: int(ts) for name, ts in zip(columns.streams, last.tolist(), strict=True)}
