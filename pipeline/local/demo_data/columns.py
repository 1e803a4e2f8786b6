"""What every demo source shares: the event and anomaly types, the column store that turns
arrays into events lazily, and the simulated calendar.

Time and ordering. The synthetic sources share one simulated window of `steps` slots of
`step_ms` (10 minutes by default) starting at `DEMO_START_MS` (Friday 2026-11-20 00:00 UTC,
so four days cover a weekend). Each slot index is a "tick". NAB series keep their real
timestamps and play one row per tick (see `nab.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

Event = dict[str, Any]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

DEMO_START_MS = 1_763_596_800_000  # 2026-11-20T00:00:00Z, a Friday
DEFAULT_STEP_MS = 10 * 60 * 1000
DEFAULT_STEPS = 576  # four simulated days at 10 minutes
MIN_STEPS = 100  # anomalies go in the second half, after a detector's warm-up

DAY_MS = 86_400_000
_HOUR_MS = 3_600_000


class DemoDataError(ValueError):
    """Bad demo parameters or unreadable NAB files; the message is one line for the CLI."""


@dataclass(frozen=True)
class InjectedAnomaly:
    """A window `[start_ms, end_ms]` (inclusive) where a stream departs from its normal
    behaviour; `benign` changes (salary day, a new habit) are real but not fraud."""

    stream: str
    start_ms: int
    end_ms: int
    kind: str
    benign: bool = False


@dataclass
class Columns:
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

    def sort(self, order: IntArray) -> Columns:
        return Columns(
            streams=self.streams,
            stream_idx=self.stream_idx[order],
            tick=self.tick[order],
            ts_ms=self.ts_ms[order],
            values={k: v[order] for k, v in self.values.items()},
            meta={k: (labels, codes[order]) for k, (labels, codes) in self.meta.items()},
            scalar=self.scalar,
            time_ordered=self.time_ordered,
        )

    def sorted_by_time(self) -> Columns:
        return self.sort(np.lexsort((self.stream_idx, self.ts_ms)))

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

    def last_ts_per_stream(self) -> dict[str, int]:
        last = np.full(len(self.streams), -1, dtype=np.int64)
        np.maximum.at(last, self.stream_idx, self.ts_ms)
        return {name: int(ts) for name, ts in zip(self.streams, last.tolist(), strict=True)}


# --- the simulated calendar ------------------------------------------------------------


def slot_grid(
    n_streams: int, what: str, steps: int, seed: int, salt: int, start_ms: int, step_ms: int
) -> tuple[np.random.Generator, tuple[int, int], IntArray]:
    """What every generator starts from, after checking its sizes: its random generator
    (seeded by `seed` and the generator's own `salt`, so sources differ for one seed), the
    (streams, steps) shape and the time of every slot."""
    _check_sizes(n_streams, what, steps, step_ms, seed)
    slot_ms = start_ms + np.arange(steps, dtype=np.int64) * step_ms
    return np.random.default_rng([seed, salt]), (n_streams, steps), slot_ms


def _check_sizes(n_streams: int, what: str, steps: int, step_ms: int, seed: int) -> None:
    if seed < 0:
        raise DemoDataError(f"seed must be a non-negative integer (got {seed})")
    if n_streams < 1:
        raise DemoDataError(f"number of {what} must be at least 1 (got {n_streams})")
    if steps < MIN_STEPS:
        raise DemoDataError(f"steps must be at least {MIN_STEPS} (got {steps})")
    if step_ms < 1000:
        raise DemoDataError(f"step must be at least 1000 ms (got {step_ms})")


def daytime(slot_ms: IntArray) -> FloatArray:
    """0 at 04:00, 1 at 16:00 UTC: people and plants are busier by day."""
    hour = (slot_ms % DAY_MS) / _HOUR_MS
    return 0.5 - 0.5 * np.cos(2 * np.pi * (hour - 4.0) / 24.0)


def weekend(slot_ms: IntArray) -> NDArray[np.bool_]:
    weekday = (slot_ms // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return weekday >= 5


def window(
    stream: str, slot_ms: IntArray, first: int, last: int, step_ms: int, kind: str, benign: bool
) -> InjectedAnomaly:
    """The anomaly covering slots first..last (inclusive) of `stream`."""
    return InjectedAnomaly(
        stream, int(slot_ms[first]), int(slot_ms[last]) + step_ms - 1, kind, benign
    )


def pick_streams(rng: np.random.Generator, n: int, counts: dict[str, int]) -> list[tuple[int, str]]:
    """Distinct streams for each scenario, so one stream tells one story."""
    kinds = [kind for kind, count in counts.items() for _ in range(count)][:n]
    chosen = rng.permutation(n)[: len(kinds)]
    return [(int(s), kind) for s, kind in zip(chosen, kinds, strict=True)]


def late_start(rng: np.random.Generator, steps: int, length: int) -> int:
    """A start in the second half, leaving room for the run and a little normal data after."""
    low, high = steps // 2, max(steps // 2 + 1, int(0.9 * steps) - length)
    return int(rng.integers(low, high))
