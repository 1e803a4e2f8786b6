"""The one CSV reader: what it accepts, and one-line errors naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.contracts.csvfile import CsvError, find_csv_files, read_csv_table


def write(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    return path


def test_reads_header_rows_numbers_and_times(tmp_path: Path) -> None:
    path = write(tmp_path, " timestamp ,a,b\n2014-07-01 00:00:00,1,2.5\n\n1404173100,3,-4\n")
    table = read_csv_table(path)
    assert table.header == ["timestamp", "a", "b"]
    assert table.lines == [2, 4]  # the blank line is skipped, and still counted
    assert table.numbers(["b", "a"]).tolist() == [[2.5, 1.0], [-4.0, 3.0]]
    assert table.epoch_ms().tolist() == [1404172800000, 1404173100000]
    assert len(read_csv_table(path, max_rows=1).rows) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "f.csv: empty file"),
        ("timestamp,a\n1404172800,1\n1404172900\n", "f.csv:3: expected 2 fields, got 1"),
        ("timestamp,a\n1404172800,\xff\n", "f.csv: not a readable CSV file"),
        ("timestamp,a\n1404172800,1\n1404172900,lots\n", "f.csv:3: a 'lots' is not a number"),
        ("timestamp,a\n1404172800,nan\n", "f.csv:2: a 'nan' is not finite"),
        ("timestamp,a\nyesterday,1\n", "f.csv:2: timestamp 'yesterday' is not ISO 8601"),
        ("time,a\n1,1\n", "f.csv: no 'timestamp' column"),
    ],
)
def test_mistakes_are_one_line_naming_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CsvError) as info:
        table = read_csv_table(path)
        table.numbers(["a"])
        table.epoch_ms()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_non_finite_numbers_can_be_kept(tmp_path: Path) -> None:
    table = read_csv_table(write(tmp_path, "a\nnan\ninf\n"))
    assert str(table.numbers(["a"], finite=False).tolist()) == "[[nan], [inf]]"


def test_finds_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    one = write(tmp_path, "a\n1\n", "one.csv")
    write(tmp_path / "d" / "sub", "a\n1\n", "two.csv")
    found = find_csv_files([one, tmp_path / "d"])
    assert found == [(one, Path("one.csv")), (tmp_path / "d/sub/two.csv", Path("sub/two.csv"))]
    with pytest.raises(CsvError, match="no such file or folder"):
        find_csv_files([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CsvError, match=r"no \.csv files below"):
        find_csv_files([tmp_path / "empty"])
