"""`vigil backtest` end to end through the CLI, on real NAB files and on broken input."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from detectors.evaluation.nab_sample import SAMPLE_DIR as NAB
from pipeline.cli.main import main

SMALL = ["realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv", "realTraffic/speed_7578.csv"]


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def nab_copy(tmp_path: Path) -> Path:
    """Two small NAB files of the shipped sample, in their category folders."""
    root = tmp_path / "data"
    for name in SMALL:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NAB / name, root / name)
    return root


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_nab_format_one_row_per_input_row(nab_copy: Path, tmp_path: Path, jobs: str) -> None:
    out = tmp_path / "out"
    assert (
        main(["backtest", str(nab_copy), "--out", str(out), "--format", "nab", "--jobs", jobs]) == 0
    )
    for name in SMALL:
        category, file = name.split("/")
        written = rows(out / category / f"vigil_{file}")
        source = rows(nab_copy / name)
        assert [r["timestamp"] for r in written] == [r["timestamp"] for r in source]
        assert [r["value"] for r in written] == [r["value"] for r in source]
        scores = np.array([float(r["anomaly_score"]) for r in written])
        assert ((scores >= 0) & (scores <= 1)).all()
        assert {r["label"] for r in written} == {"0"}
        assert scores[:48].max() == 0.0  # warm-up


def test_same_scores_whatever_the_number_of_processes(nab_copy: Path, tmp_path: Path) -> None:
    for jobs in ("1", "2"):
        assert main(["backtest", str(nab_copy), "--out", str(tmp_path / jobs), "--jobs", jobs]) == 0
    for name in SMALL:
        one = rows(tmp_path / "1" / name)
        two = rows(tmp_path / "2" / name)
        # A batched matmul may differ in the last bits with the batch's size.
        a = np.array([float(r["anomaly_score"]) for r in one])
        b = np.array([float(r["anomaly_score"]) for r in two])
        np.testing.assert_allclose(a, b, atol=1e-3)
        assert set(one[0]) == {"timestamp", "value", "anomaly_score", "expected", "alert"}


def test_baseline_runs_through_the_same_path(nab_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "hst"
    argv = ["backtest", str(nab_copy), "--out", str(out), "--format", "nab", "--detector", "hst"]
    assert main(argv) == 0
    category, file = SMALL[1].split("/")
    assert len(rows(out / category / f"hst_{file}")) == len(rows(nab_copy / SMALL[1]))


def test_multivariate_file_gets_an_expected_column_per_feature(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    src = tmp_path / "pump.csv"
    with src.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "temperature", "vibration"])
        for t in range(120):
            writer.writerow(
                [f"2024-01-01 00:{t // 60:02d}:{t % 60:02d}", 20 + rng.normal(), 1 + rng.normal()]
            )
    assert main(["backtest", str(src), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 0
    written = rows(tmp_path / "out" / "pump.csv")
    assert len(written) == 120
    assert {"expected_temperature", "expected_vibration", "alert"} <= set(written[0])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,value\n1,2\n", "no 'timestamp' column"),
        ("timestamp,value\n2024-01-01,abc\n", "is not a number"),
        ("timestamp,value\n2024-01-01,nan\n", "is not finite"),
        ("timestamp,value\n2024-01-01,1,2\n", "expected 2 fields"),
        ("", "empty file"),
    ],
)
def test_bad_csv_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    assert main(["backtest", str(bad), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_missing_path_and_unknown_detector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    good = tmp_path / "a.csv"
    good.write_text("timestamp,value\n1,2\n")
    assert main(["backtest", str(good), "--out", str(tmp_path / "o"), "--detector", "x"]) == 2
    assert "unknown detector 'x'" in capsys.readouterr().err


# The same times as a producer sends them (JSON numbers and strings) and as a CSV holds
# them, in increasing order: epoch seconds, ISO with Z, naive ISO (UTC), an offset, epoch
# milliseconds, fractional seconds.
SAME_TIMES: list[int | float | str] = [
    1404172800,
    "2014-07-01T00:30:00Z",
    "2014-07-01 01:00:00",
    "2014-07-01T03:30:00+02:00",
    1404180000500,
    1404181800.25,
]


def test_backtest_and_training_read_times_at_the_instants_the_worker_does(
    tmp_path: Path,
) -> None:
    from pipeline.contracts.columns import decode_columns
    from pipeline.contracts.events import encode_event
    from pipeline.evaluation.backtest import read_csv
    from pipeline.kafka.base import Record, RecordBatch
    from pipeline.models.training_data import read_csv as read_training_csv

    records = [
        Record("events", 0, i, b"s", encode_event("s", ts, 1.0), [], 0)
        for i, ts in enumerate(SAME_TIMES)
    ]
    decoded = decode_columns(
        RecordBatch.of(records), max_features=4, max_abs_value=1e12, max_message_bytes=4096
    )
    assert decoded.rejected == []
    worker = decoded.ts_ms
    path = tmp_path / "s.csv"
    path.write_text("timestamp,value\n" + "".join(f"{ts},1.0\n" for ts in SAME_TIMES))
    series = read_csv(path, max_features=1)
    assert series.ts_ms.tolist() == worker
    assert read_training_csv([str(path)], max_features=1).streams["s"].ts_ms == worker
    assert worker[0] == 1404172800000 and worker[-1] == 1404181800250


@pytest.mark.parametrize("number", [10**10, 5 * 10**10, 10**11 - 1])
def test_numbers_below_the_cut_off_are_seconds_for_every_reader(
    tmp_path: Path, number: int
) -> None:
    """Once 1e10 in backtest and 1e11 in the worker: 5e10 was 1971 to one, 3554 to the other."""
    from pipeline.contracts.csvfile import CsvError
    from pipeline.contracts.events import Event, decode_record, encode_event
    from pipeline.evaluation.backtest import read_csv
    from pipeline.kafka.base import Record

    verdict = decode_record(
        Record("events", 0, 0, b"s", encode_event("s", number, 1.0), [], 0),
        max_features=4,
        max_abs_value=1e12,
        max_message_bytes=4096,
    )
    assert not isinstance(verdict, Event)  # seconds: after the year 2200
    path = tmp_path / "f.csv"
    path.write_text(f"timestamp,value\n{number},1\n")
    with pytest.raises(CsvError, match=r"f\.csv:2: timestamp .* after the year 2200"):
        read_csv(path, max_features=1)
