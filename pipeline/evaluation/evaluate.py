"""NAB evaluation of score files: the file side of `detectors.evaluation.nab_scoring`.

Score files follow NAB's results layout, ``<category>/<detector>_<file>.csv`` with columns
``timestamp,value,anomaly_score,label``, found anywhere below a scores directory (so both
``DIR/<category>/...`` written by ``vigil backtest --format nab`` and NAB's own
``DIR/<detector>/<category>/...`` work). The detector is the file-name prefix before
``_<file>``; several detectors in one or more directories are compared side by side.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich import box
from rich.console import Console
from rich.table import Table

from detectors.evaluation.nab_scoring import (
    PROFILES,
    CorpusResult,
    ScoredFile,
    score_corpus,
    sweep_threshold,
    window_rows,
)
from pipeline.contracts.csvfile import read_csv_table
from pipeline.contracts.timestamps import BadTimestamp, epoch_ms_text
from pipeline.errors import UserError

Timestamps = npt.NDArray[np.datetime64]
Series = tuple[Timestamps, npt.NDArray[np.float64]]
Windows = dict[str, list[tuple[np.datetime64, np.datetime64]]]


class EvaluateError(UserError):
    """A user mistake (bad path, malformed file); the CLI prints it as one line."""


@dataclass(frozen=True)
class DetectorReport:
    """One detector's result per profile, each at that profile's swept threshold."""

    detector: str
    results: dict[str, CorpusResult]


# --- reading ---------------------------------------------------------------------------


def _timestamps(raw: Sequence[str], where: str) -> Timestamps:
    """Times by the worker's rule (`contracts.timestamps`), as datetime64 for NAB's windows."""
    try:
        ms = [epoch_ms_text(text) for text in raw]
    except BadTimestamp as exc:
        raise EvaluateError(f"{where}: unreadable timestamp ({exc})") from None
    return np.array(ms, dtype="datetime64[ms]").astype("datetime64[us]")


def _read_csv(path: Path, columns: Sequence[str]) -> list[list[str]]:
    """The named columns of a CSV with a header row, as strings, in file order."""
    table = read_csv_table(path)
    return [list(row) for row in zip(*(table.column(c) for c in columns), strict=True)]


def read_series(path: str | Path) -> tuple[list[str], list[str]]:
    """A NAB data file's timestamp and value columns, as the strings in the file."""
    rows = _read_csv(Path(path), ("timestamp", "value"))
    return [r[0] for r in rows], [r[1] for r in rows]


def read_windows(path: str | Path) -> Windows:
    """``windows.json``: relative file -> list of inclusive ``[start, end]`` timestamps."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise EvaluateError(f"cannot read windows file {path}: {exc.strerror}") from None
    except ValueError:
        raise EvaluateError(f"windows file {path} is not valid JSON") from None
    if not isinstance(raw, dict):
        raise EvaluateError(f"windows file {path} must map file names to window lists")
    windows: Windows = {}
    for name, pairs in raw.items():
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) for t in p)
            for p in pairs
        ):
            raise EvaluateError(f"windows file {path}: {name} must list [start, end] pairs")
        stamps = _timestamps([t for p in pairs for t in p], f"{path} ({name})")
        windows[name] = [(stamps[i], stamps[i + 1]) for i in range(0, len(stamps), 2)]
    return windows


def _split_name(filename: str, category: str, known: set[str] | None) -> tuple[str, str] | None:
    """``<detector>_<file>`` -> (detector, "category/file" or "file"), or None when not a
    score file.

    With the split's file list the longest matching file name wins, so underscores in
    either part are fine; without it the detector is taken to end at the first underscore
    (NAB's detector names have none).
    """
    if known is None:
        detector, sep, file = filename.partition("_")
        return (detector, f"{category}/{file}") if sep and detector and file else None
    matches = []
    for name in known:
        # a name is "category/file", or just "file" for a flat corpus (MGAB's layout)
        folder, _, base = name.rpartition("/")
        if (
            folder in ("", category)
            and filename.endswith("_" + base)
            and len(filename) > len(base) + 1
        ):
            matches.append(name)
    if not matches:
        return None
    name = max(matches, key=len)
    return filename[: len(filename) - len(name.rpartition("/")[2]) - 1], name


def read_scores_dir(
    scores_dir: str | Path, known_files: Iterable[str] | None = None
) -> dict[str, dict[str, Series]]:
    """Every score file below ``scores_dir``: detector -> relative file -> (timestamps, scores).

    ``known_files`` (relative names such as ``realTweets/Twitter_volume_FB.csv``) makes the
    detector/file split exact and skips unrelated CSVs.
    """
    scores_dir = Path(scores_dir)
    if not scores_dir.is_dir():
        raise EvaluateError(f"scores directory {scores_dir} does not exist")
    known = set(known_files) if known_files is not None else None
    found: dict[str, dict[str, Series]] = {}
    for path in sorted(scores_dir.rglob("*.csv")):
        split = _split_name(path.name, path.parent.name, known)
        if split is None:
            continue
        detector, name = split
        table = read_csv_table(path)
        stamps = _timestamps(table.column("timestamp"), str(path))
        scores = table.numbers(["anomaly_score"], finite=False)[:, 0]
        found.setdefault(detector, {})[name] = (stamps, scores)
    if not found:
        raise EvaluateError(f"no score files (<category>/<detector>_<file>.csv) in {scores_dir}")
    return found


# --- evaluating ------------------------------------------------------------------------


def _corpus(
    detector: str, scores: dict[str, Series], windows: Windows, data_dir: Path
) -> list[ScoredFile]:
    """Check a detector's scores line up with the data rows, and attach the windows."""
    files = []
    for name in sorted(windows):
        if name not in scores:
            raise EvaluateError(f"detector {detector} has no scores for {name}")
        data_stamps, _ = read_series(data_dir / name)
        stamps, values = scores[name]
        if len(stamps) != len(data_stamps) or np.any(
            stamps != _timestamps(data_stamps, str(data_dir / name))
        ):
            raise EvaluateError(
                f"{detector} scores for {name} do not match the data rows "
                f"({len(stamps)} scores, {len(data_stamps)} data rows)"
            )
        try:
            files.append(ScoredFile(name, stamps, values, window_rows(stamps, windows[name])))
        except ValueError as exc:
            raise EvaluateError(f"{detector}, {exc}") from None
    return files


def load_corpora(
    data_dir: str | Path, windows_path: str | Path | None, scores_dirs: Sequence[str | Path]
) -> dict[str, list[ScoredFile]]:
    """Every detector found below ``scores_dirs`` -> its files, checked against the data."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise EvaluateError(f"data directory {data_dir} does not exist")
    windows = read_windows(windows_path or data_dir / "windows.json")
    merged: dict[str, dict[str, Series]] = {}
    for scores_dir in scores_dirs:
        for detector, per_file in read_scores_dir(scores_dir, windows).items():
            clash = set(per_file) & set(merged.get(detector, {}))
            if clash:
                raise EvaluateError(f"two score files for {detector} on {min(clash)}")
            merged.setdefault(detector, {}).update(per_file)
    if not merged:
        raise EvaluateError("no scores directory given")
    return {d: _corpus(d, per_file, windows, data_dir) for d, per_file in merged.items()}


def evaluate_detectors(
    data_dir: str | Path, windows_path: str | Path | None, scores_dirs: Sequence[str | Path]
) -> list[DetectorReport]:
    """Sweep every profile's threshold for every detector found; best standard score first."""
    reports = []
    for detector, files in load_corpora(data_dir, windows_path, scores_dirs).items():
        results = {}
        for name, profile in PROFILES.items():
            try:
                threshold, _ = sweep_threshold(files, profile)
            except ValueError as exc:
                raise EvaluateError(str(exc)) from None
            results[name] = score_corpus(files, threshold, profile)
        reports.append(DetectorReport(detector, results))
    return sorted(reports, key=lambda r: -r.results["standard"].score)


def _duration(seconds: float) -> str:
    if math.isnan(seconds):  # nothing detected
        return "-"
    minutes = round(seconds / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d{hours:02d}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def _number(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _threshold(value: float) -> str:
    return "never" if value == float("inf") else f"{value:.4f}"


def _scores_table(reports: Sequence[DetectorReport]) -> Table:
    """The headline comparison, laid out like NAB's published table."""
    table = Table(title="NAB score (swept threshold)", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("detector")
    for name in PROFILES:
        table.add_column(name, justify="right")
    for report in reports:
        cells = [f"{r.score:.1f} ({_threshold(r.threshold)})" for r in report.results.values()]
        table.add_row(report.detector, *cells)
    return table


def _detections_table(reports: Sequence[DetectorReport]) -> Table:
    table = Table(
        title="Detections at each profile's threshold",
        caption="TP, FN: windows detected, missed; FP: flagged rows outside every window; "
        "prec., rec.: precision, recall per event; "
        "delay: rows (time) from window start to first detection",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("detector", no_wrap=True)
    table.add_column("profile", no_wrap=True, min_width=13)
    for header in ("TP", "FN", "FP", "prec.", "rec.", "F1"):
        table.add_column(header, justify="right")
    table.add_column("delay", justify="right", no_wrap=True)
    for report in reports:
        for name, r in report.results.items():
            table.add_row(
                report.detector if name == "standard" else "",
                name,
                str(r.tp_windows),
                str(r.fn_windows),
                str(r.fp_detections),
                _number(r.precision, 2),
                _number(r.recall, 2),
                f"{r.f1:.2f}",
                f"{_number(r.mean_delay_rows, 0)} ({_duration(r.mean_delay_seconds)})",
            )
        table.add_section()
    return table


def _per_file_table(reports: Sequence[DetectorReport]) -> Table:
    table = Table(
        title="Per file, standard profile: TP / FN / FP",
        caption="TP, FN: windows detected, missed; FP: flagged rows outside every window",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("file")
    for report in reports:
        table.add_column(report.detector, justify="right")
    names = [f.name for f in reports[0].results["standard"].files]
    for i, name in enumerate(names):
        cells = []
        for report in reports:
            f = report.results["standard"].files[i]
            cells.append(f"{f.tp_windows} / {f.fn_windows} / {f.fp_detections}")
        table.add_row(name, *cells)
    return table


def run_evaluate(
    data_dir: str | Path,
    windows_path: str | Path | None,
    scores_dirs: Sequence[str | Path],
    console: Console,
    per_file: bool = False,
) -> int:
    """Print the NAB comparison of every detector found in ``scores_dirs``; returns 0.

    ``windows_path`` defaults to ``data_dir/windows.json``. Raises EvaluateError.
    """
    reports = evaluate_detectors(data_dir, windows_path, scores_dirs)
    console.print(_scores_table(reports))
    console.print(_detections_table(reports))
    if per_file:
        console.print(_per_file_table(reports))
    return 0
