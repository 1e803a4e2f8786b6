"""NAB series replayed as demo streams, from the sample shipped in the package and any
fuller NAB folder the user adds.

Every file `<category>/<stem>.csv` becomes stream `nab.<category>.<stem>` with its real
timestamps; the series play one row per tick, i.e. they are interleaved by row index
rather than by time: re-basing them would change the data the benchmark labels refer to.

Where the series come from (`nab_sources`): always the sample in
`detectors/evaluation/nab_sample` (six series, one per category), plus one more folder —
the one given (`vigil demo --nab-dir`), else $VIGIL_NAB_DIR, else `../shared/data/nab-dev`
beside the repository when it exists. A folder the user named that holds no NAB data is
an error, never silently skipped. A file present in both is read once, from the later one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detectors.evaluation.nab_sample import SAMPLE_DIR
from pipeline.contracts.csvfile import read_csv_table
from pipeline.contracts.timestamps import epoch_ms
from pipeline.local.demo_data.columns import (
    Columns,
    DemoDataError,
    Event,
    FloatArray,
    InjectedAnomaly,
    IntArray,
)

NAB_DIR_ENV = "VIGIL_NAB_DIR"


def shared_nab_dir() -> Path:
    """`../shared/data/nab-dev` beside the repository (a development checkout's extra data)."""
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "nab-dev"


def _is_nab_dir(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*/*.csv"))


def nab_sources(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """The folders the demo replays: the shipped sample, then the user's or the shared one.

    Raises DemoDataError when a folder named by the flag or the environment has no NAB
    data (`<category>/<file>.csv`): the user asked for it, so dropping it would hide a typo.
    """
    named = explicit or os.environ.get(NAB_DIR_ENV)
    if named:
        extra = Path(named).expanduser()
        if not _is_nab_dir(extra):
            origin = "--nab-dir" if explicit else NAB_DIR_ENV
            raise DemoDataError(f"no NAB data (<category>/<file>.csv) in {extra} ({origin})")
        return [SAMPLE_DIR, extra]
    shared = shared_nab_dir()
    return [SAMPLE_DIR, shared] if _is_nab_dir(shared) else [SAMPLE_DIR]


def nab_stream_name(relative_csv: str) -> str:
    """`realKnownCause/nyc_taxi.csv` -> `nab.realKnownCause.nyc_taxi` (the NAB key form)."""
    path = Path(relative_csv)
    return f"nab.{path.parent.name}.{path.stem}"


def _read_nab_csv(path: Path, max_rows: int | None) -> tuple[IntArray, FloatArray]:
    """A NAB file's timestamps (naive: UTC, by the worker's rule) and finite values."""
    table = read_csv_table(path, max_rows)
    if table.header != ["timestamp", "value"]:
        raise DemoDataError(f"{path}: expected header 'timestamp,value'")
    ts = table.epoch_ms("timestamp")
    values = table.numbers(["value"])[:, 0]
    # A few NAB files repeat a timestamp (daylight-saving artefacts). Every row is kept, in
    # order, because NAB labels count rows; a repeat moves 1 ms after the previous row so
    # the stream's timestamps strictly increase (the worker rejects duplicates).
    index = np.arange(len(ts), dtype=np.int64)
    ts = np.maximum.accumulate(ts - index) + index
    return ts, values


def nab_files(dirs: Sequence[Path]) -> dict[str, Path]:
    """`<category>/<file>.csv` -> its path, sorted; a later folder wins a name both have."""
    found: dict[str, Path] = {}
    for folder in dirs:
        for path in folder.glob("*/*.csv"):
            found[path.relative_to(folder).as_posix()] = path
    return dict(sorted(found.items()))


def nab_columns(dirs: Sequence[Path], max_rows_per_file: int | None) -> Columns:
    files = nab_files(dirs)
    if not files:
        where = ", ".join(str(d) for d in dirs) or "no folder"
        raise DemoDataError(f"no NAB data (<category>/<file>.csv) under {where}")
    streams = [nab_stream_name(name) for name in files]
    parts = [_read_nab_csv(path, max_rows_per_file) for path in files.values()]
    ts = np.concatenate([p[0] for p in parts])
    values = np.concatenate([p[1] for p in parts])
    stream_idx = np.concatenate([np.full(len(p[0]), i, np.int64) for i, p in enumerate(parts)])
    tick = np.concatenate([np.arange(len(p[0]), dtype=np.int64) for p in parts])
    columns = Columns(
        streams=streams,
        stream_idx=stream_idx,
        tick=tick,
        ts_ms=ts,
        values={"value": values},
        scalar=True,
        time_ordered=False,
    )
    return columns.sort(np.lexsort((stream_idx, tick)))


def nab_events(dirs: Sequence[Path], max_rows_per_file: int | None = None) -> list[Event]:
    """Every NAB series as stream `nab.<category>.<stem>`, interleaved by row index."""
    return nab_columns(dirs, max_rows_per_file).events()


def nab_windows(dirs: Sequence[Path]) -> list[InjectedAnomaly]:
    """NAB's labelled windows (each folder's windows.json) as anomalies of kind
    `nab_window`; like the files, a later folder's labels replace an earlier one's."""
    labelled: dict[str, list[list[str]]] = {}
    for folder in dirs:
        path = folder / "windows.json"
        try:
            labelled.update(json.loads(path.read_text()))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise DemoDataError(f"cannot read {path}: {exc}") from None
    return [
        InjectedAnomaly(nab_stream_name(relative), epoch_ms(start), epoch_ms(end), "nab_window")
        for relative, windows in sorted(labelled.items())
        for start, end in windows
    ]
