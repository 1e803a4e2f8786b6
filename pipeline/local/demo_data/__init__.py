"""Realistic demo data for `vigil demo`: NAB replay, card transactions and pump sensors.

This package only generates events; it does no Kafka or Redis I/O. Every event follows the
Vigil event contract (`ts` is always epoch milliseconds, an int); extra top-level fields
(`merchant`, `kind`) become the alert's `meta`. One module per source (`nab`,
`transactions`, `sensors`) over the shared column store and calendar (`columns`);
`demo_events` merges them.

Ordering: `demo_events` orders by tick (slot index): within a tick NAB rows come first (by
file), then the synthetic events in timestamp order, so the synthetic part is globally
time ordered and every stream's timestamps strictly increase.

Injected anomalies are reported as `InjectedAnomaly` windows `[start_ms, end_ms]`
(inclusive) covering the events that depart from the stream's normal behaviour; for
persistent changes (level shift, bearing wear, new spending pattern) the window runs to the
end of the stream. Benign changes (salary day, new spending pattern) are listed too, with
`benign=True`: a good detector may notice them but they are not fraud.

Generation is vectorised with numpy over (streams x slots) and deterministic for a seed;
events only become dicts when the iterator reaches them, so long demos stay small in memory.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.local.demo_data.columns import (
    DEFAULT_STEP_MS,
    DEFAULT_STEPS,
    DEMO_START_MS,
    Columns,
    DemoDataError,
    Event,
    InjectedAnomaly,
)
from pipeline.local.demo_data.nab import (
    NAB_DIR_ENV,
    nab_columns,
    nab_events,
    nab_sources,
    nab_windows,
)
from pipeline.local.demo_data.sensors import sensor_columns
from pipeline.local.demo_data.transactions import transaction_columns

__all__ = [
    "DEMO_START_MS",
    "NAB_DIR_ENV",
    "DemoData",
    "DemoDataError",
    "Event",
    "InjectedAnomaly",
    "demo_events",
    "nab_events",
    "nab_sources",
    "nab_windows",
    "sensor_columns",
    "transaction_columns",
]


@dataclass
class DemoData:
    """Everything a demo run needs; `events` is a one-shot iterator in playing order."""

    events: Iterator[Event]
    anomalies: list[InjectedAnomaly]
    n_streams: int
    nab_streams: list[str] = field(default_factory=list)


def demo_events(
    nab_dirs: Sequence[Path],
    n_accounts: int = 1000,
    n_pumps: int = 50,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    *,
    max_nab_rows: int | None = None,
    start_ms: int = DEMO_START_MS,
    step_ms: int = DEFAULT_STEP_MS,
) -> DemoData:
    """All sources merged by tick (see the package docstring); no NAB when `nab_dirs` is
    empty. `n_accounts` or `n_pumps` may be 0 to leave that source out."""
    sources: list[Columns] = []
    anomalies: list[InjectedAnomaly] = []
    nab_streams: list[str] = []
    if nab_dirs:
        nab = nab_columns(nab_dirs, max_nab_rows)
        sources.append(nab)
        nab_streams = list(nab.streams)
        last_ts = nab.last_ts_per_stream()
        anomalies += [w for w in nab_windows(nab_dirs) if w.start_ms <= last_ts.get(w.stream, -1)]
    n_streams = len(nab_streams)
    if n_accounts:
        tx, tx_anomalies = transaction_columns(n_accounts, steps, seed, start_ms, step_ms)
        sources.append(tx)
        anomalies += tx_anomalies
        n_streams += n_accounts
    if n_pumps:
        pumps, pump_anomalies = sensor_columns(n_pumps, steps, seed, start_ms, step_ms)
        sources.append(pumps)
        anomalies += pump_anomalies
        n_streams += n_pumps
    merged = heapq.merge(*(source.rows() for source in sources), key=lambda row: row[0])
    return DemoData(
        events=(event for _, event in merged),
        anomalies=anomalies,
        n_streams=n_streams,
        nab_streams=nab_streams,
    )
