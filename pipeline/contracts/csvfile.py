"""CSV files of series, read one way by every command that takes them.

Backtest, evaluation, training and the demo's NAB replay all read files with a header
row, a ``timestamp`` column and number columns. Reading them here once means one set
of rules and one wording for every mistake: the file must be UTF-8 CSV with a header,
every row has as many cells as the header (blank lines are skipped), numbers are
finite, and timestamps follow the worker's rule (`pipeline.contracts.timestamps`), so a
file replayed offline is read at the instants the worker would read it live. Errors
name the file and line, on one line.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline.contracts.timestamps import BadTimestamp, epoch_ms_text
from pipeline.errors import UserError


class CsvError(UserError):
    """A missing, unreadable or malformed CSV file; the message names the file and line."""


@dataclass(frozen=True)
class CsvTable:
    """A CSV file as read: header names (stripped) and rows of cells, with their lines."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]  # the file line of each row, for error messages

    def has(self, name: str) -> bool:
        return name in self.header

    def column(self, name: str) -> list[str]:
        """A column's cells as written; CsvError when the header has no such column."""
        if name not in self.header:
            raise CsvError(f"{self.path}: no {name!r} column")
        i = self.header.index(name)
        return [row[i] for row in self.rows]

    def numbers(self, names: Sequence[str], *, finite: bool = True) -> npt.NDArray[np.float64]:
        """The named columns as floats [rows, columns]; NaN and infinities refused if
        ``finite``."""
        out = np.empty((len(self.rows), len(names)), dtype=np.float64)
        for f, name in enumerate(names):
            cells = self.column(name)
            try:
                out[:, f] = np.array(cells, dtype=np.float64)
            except ValueError:
                self._raise_first(name, cells, _is_number, "is not a number")
            if finite and not np.isfinite(out[:, f]).all():
                self._raise_first(name, cells, _is_finite, "is not finite")
        return out

    def epoch_ms(self, name: str = "timestamp") -> npt.NDArray[np.int64]:
        """A timestamp column as int64 epoch milliseconds, by the worker's rule."""
        cells = self.column(name)
        out = np.empty(len(cells), dtype=np.int64)
        for t, cell in enumerate(cells):
            try:
                out[t] = epoch_ms_text(cell)
            except BadTimestamp as exc:
                raise CsvError(f"{self.path}:{self.lines[t]}: {name} {cell!r} {exc}") from None
        return out

    def _raise_first(
        self, name: str, cells: list[str], ok: Callable[[str], bool], problem: str
    ) -> None:
        t = next(t for t, cell in enumerate(cells) if not ok(cell))
        raise CsvError(f"{self.path}:{self.lines[t]}: {name} {cells[t]!r} {problem}")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _is_finite(cell: str) -> bool:
    return math.isfinite(float(cell))


def find_csv_files(paths: Sequence[str | Path]) -> list[tuple[Path, Path]]:
    """CSV files named directly or found recursively below folders, in a stable order,
    each with its path relative to the argument it was found under (a file's own name)."""
    found: list[tuple[Path, Path]] = []
    for arg in paths:
        root = Path(arg)
        if root.is_file():
            found.append((root, Path(root.name)))
        elif root.is_dir():
            files = sorted(root.rglob("*.csv"))
            if not files:
                raise CsvError(f"no .csv files below {root}")
            found.extend((f, f.relative_to(root)) for f in files)
        else:
            raise CsvError(f"{root}: no such file or folder")
    return found


def read_csv_table(path: str | Path, max_rows: int | None = None) -> CsvTable:
    """Read ``path`` (at most ``max_rows`` data rows); CsvError for any problem."""
    path = Path(path)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise CsvError(f"{path}: empty file")
            for row in itertools.islice(filter(None, reader), max_rows):
                if len(row) != len(header):
                    raise CsvError(
                        f"{path}:{reader.line_num}: expected {len(header)} fields, got {len(row)}"
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except OSError as exc:
        raise CsvError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error):
        raise CsvError(f"{path}: not a readable CSV file") from None
    return CsvTable(path, [h.strip() for h in header], rows, lines)
