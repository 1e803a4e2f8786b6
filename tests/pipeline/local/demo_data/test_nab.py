"""NAB replay for the demo: the shipped sample, an added folder, and broken files."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from detectors.evaluation.nab_sample import SAMPLE_DIR
from pipeline.contracts.csvfile import CsvError
from pipeline.local.demo_data import (
    NAB_DIR_ENV,
    DemoDataError,
    Event,
    nab_events,
    nab_sources,
    nab_windows,
)
from pipeline.local.demo_data import nab as nab_module

from .helpers import assert_contract, assert_strictly_increasing_per_stream, by_stream

SAMPLE_FILES = sorted(SAMPLE_DIR.glob("*/*.csv"))


@pytest.fixture(scope="module")
def nab() -> list[Event]:
    return nab_events([SAMPLE_DIR])


def test_the_package_ships_six_labelled_series_and_their_licence() -> None:
    categories = {path.parent.name for path in SAMPLE_FILES}
    assert len(SAMPLE_FILES) == 6 and len(categories) == 6
    labelled = json.loads((SAMPLE_DIR / "windows.json").read_text())
    assert set(labelled) == {p.relative_to(SAMPLE_DIR).as_posix() for p in SAMPLE_FILES}
    assert sum(len(w) for w in labelled.values()) >= 10
    assert "MIT" in (SAMPLE_DIR / "LICENSE").read_text()
    assert sum(p.stat().st_size for p in SAMPLE_FILES) < 600_000


def test_nab_loader_reads_every_row_of_the_sample(nab: list[Event]) -> None:
    streams = by_stream(nab)
    assert len(streams) == len(SAMPLE_FILES)
    for path in SAMPLE_FILES:
        name = f"nab.{path.parent.name}.{path.stem}"
        with path.open() as fh:
            n_rows = sum(1 for _ in fh) - 1
        assert len(streams[name]) == n_rows, name
    for event in nab:
        assert_contract(event)
    assert_strictly_increasing_per_stream(nab)


def test_nab_rows_keep_their_timestamps_and_values(nab: list[Event]) -> None:
    speed = by_stream(nab)["nab.realTraffic.speed_7578"]
    first_ms = int(datetime(2015, 9, 8, 11, 39, tzinfo=UTC).timestamp() * 1000)
    assert speed[0] == {"stream": "nab.realTraffic.speed_7578", "ts": first_ms, "value": 73.0}
    # A daylight-saving repeat of 03:00 is kept, one millisecond after the previous row.
    latency = by_stream(nab)["nab.realKnownCause.ec2_request_latency_system_failure"]
    gaps = np.diff([e["ts"] for e in latency])
    assert (gaps == 1).sum() >= 10


def test_nab_streams_are_interleaved_by_row_index(nab: list[Event]) -> None:
    n_files = len(SAMPLE_FILES)
    first_rows = nab[:n_files]
    assert len({e["stream"] for e in first_rows}) == n_files
    limited = nab_events([SAMPLE_DIR], max_rows_per_file=5)
    assert len(limited) == 5 * n_files
    assert limited[:n_files] == first_rows


def test_nab_windows_are_read(nab: list[Event]) -> None:
    windows = nab_windows([SAMPLE_DIR])
    labelled = json.loads((SAMPLE_DIR / "windows.json").read_text())
    assert len(windows) == sum(len(w) for w in labelled.values())
    names = set(by_stream(nab))
    for w in windows:
        assert w.kind == "nab_window" and w.stream in names and w.start_ms < w.end_ms


def test_a_folder_without_nab_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DemoDataError, match="no NAB data"):
        nab_events([tmp_path])


@pytest.fixture
def extra(tmp_path: Path) -> Path:
    """A user's NAB folder: one file the sample has (changed) and one it has not."""
    root = tmp_path / "more"
    shutil.copytree(SAMPLE_DIR / "realTraffic", root / "realTraffic")
    (root / "realTraffic" / "speed_7578.csv").write_text(
        "timestamp,value\n2015-01-01 00:00:00,1\n2015-01-01 00:05:00,2\n"
    )
    (root / "mine").mkdir()
    (root / "mine" / "series.csv").write_text("timestamp,value\n2015-01-01 00:00:00,5\n")
    (root / "windows.json").write_text(
        json.dumps({"mine/series.csv": [["2015-01-01 00:00:00", "2015-01-01 01:00:00"]]})
    )
    return root


def test_an_added_folder_adds_series_and_labels_to_the_sample(extra: Path) -> None:
    streams = by_stream(nab_events([SAMPLE_DIR, extra]))
    assert len(streams) == len(SAMPLE_FILES) + 1
    assert [e["value"] for e in streams["nab.realTraffic.speed_7578"]] == [1.0, 2.0]
    assert [e["value"] for e in streams["nab.mine.series"]] == [5.0]
    windows = {w.stream for w in nab_windows([SAMPLE_DIR, extra])}
    assert "nab.mine.series" in windows
    assert "nab.realKnownCause.ec2_request_latency_system_failure" in windows


def test_sources_are_the_sample_plus_the_flag_then_the_env_then_shared(
    extra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(NAB_DIR_ENV, raising=False)
    monkeypatch.setattr(nab_module, "shared_nab_dir", lambda: tmp_path / "no-shared")
    assert nab_sources() == [SAMPLE_DIR]  # a plain clone: the sample alone
    monkeypatch.setattr(nab_module, "shared_nab_dir", lambda: extra)
    assert nab_sources() == [SAMPLE_DIR, extra]  # ../shared beside a checkout adds to it
    monkeypatch.setenv(NAB_DIR_ENV, str(SAMPLE_DIR))
    assert nab_sources() == [SAMPLE_DIR, SAMPLE_DIR]
    assert nab_sources(str(extra)) == [SAMPLE_DIR, extra]  # the flag beats the environment


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_named_folder_without_nab_data_is_an_error_not_skipped(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(NAB_DIR_ENV, raising=False)
    missing = tmp_path / "nowhere"
    if how == "env":
        monkeypatch.setenv(NAB_DIR_ENV, str(missing))
    with pytest.raises(DemoDataError, match="no NAB data") as info:
        nab_sources(str(missing) if how == "flag" else None)
    assert ("--nab-dir" if how == "flag" else NAB_DIR_ENV) in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,value\n2014-01-01 00:00:00,1\n", "expected header"),
        ("timestamp,value\nyesterday,1\n", "bad.csv:2: timestamp 'yesterday' is not ISO 8601"),
        ("timestamp,value\n2014-01-01 00:00:00,lots\n", "'lots' is not a number"),
        ("timestamp,value\n2014-01-01 00:00:00,nan\n", "'nan' is not finite"),
        ("timestamp,value\n2014-01-01 00:00:00\n", "bad.csv:2: expected 2 fields, got 1"),
        ("timestamp,value\n2014-01-01 00:00:00,\xff\n", "not a readable CSV"),
    ],
)
def test_a_broken_nab_file_gives_a_one_line_error(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "bad.csv").write_bytes(content.encode("latin-1"))
    with pytest.raises((DemoDataError, CsvError), match=message) as info:
        nab_events([tmp_path])
    assert "\n" not in str(info.value) and "bad.csv" in str(info.value)
