"""Evaluation and baseline backtests on real files in NAB's layouts (no mocks)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from detectors.evaluation.nab_sample import SAMPLE_DIR
from pipeline.errors import UserError
from pipeline.evaluation.evaluate import (
    EvaluateError,
    evaluate_detectors,
    read_scores_dir,
    read_series,
    run_evaluate,
)

# Two series: catA/series_one.csv (100 rows, window rows 40..49) and
# catB/two_parts.csv (200 rows, windows 50..59 and 120..149).
LAYOUT = {
    "catA/series_one.csv": (100, [(40, 49)]),
    "catB/two_parts.csv": (200, [(50, 59), (120, 149)]),
}


def stamp(i: int) -> str:
    minutes = 5 * i
    return f"2024-01-{1 + minutes // 1440:02d} {minutes // 60 % 24:02d}:{minutes % 60:02d}:00"


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    rng = np.random.default_rng(3)
    windows = {}
    for name, (n, rows) in LAYOUT.items():
        values = 10 + rng.normal(0, 1, n)
        for first, _ in rows:
            values[first] += 30
        write_csv(
            root / name, ["timestamp", "value"], [[stamp(i), v] for i, v in enumerate(values)]
        )
        windows[name] = [[stamp(a) + ".000000", stamp(b) + ".000000"] for a, b in rows]
    (root / "windows.json").write_text(json.dumps(windows))
    return root


def write_scores(root: Path, detector: str, name: str, scores: list[float]) -> Path:
    category, base = name.split("/")
    path = root / category / f"{detector}_{base}"
    rows = [[stamp(i), 0, s, 0] for i, s in enumerate(scores)]
    write_csv(path, ["timestamp", "value", "anomaly_score", "label"], rows)
    return path


def perfect_scores(name: str) -> list[float]:
    n, windows = LAYOUT[name]
    scores = [0.1] * n
    for first, _ in windows:
        scores[first] = 0.9
    return scores


def write_detector(root: Path, detector: str, fill: float | None = None) -> None:
    for name, (n, _) in LAYOUT.items():
        write_scores(root, detector, name, perfect_scores(name) if fill is None else [fill] * n)


def test_read_scores_dir_finds_detectors_in_both_layouts(tmp_path: Path) -> None:
    write_scores(tmp_path / "flat", "perfect", "catA/series_one.csv", [0.5] * 100)
    write_scores(tmp_path / "nab" / "my_det", "my_det", "catA/series_one.csv", [0.5] * 100)
    write_csv(tmp_path / "nab" / "my_det" / "my_det_standard_scores.csv", ["x"], [])
    found = read_scores_dir(tmp_path, known_files=LAYOUT)
    assert sorted(found) == ["my_det", "perfect"]
    stamps, scores = found["my_det"]["catA/series_one.csv"]
    assert len(stamps) == 100
    assert scores.tolist() == [0.5] * 100
    # Without the file list the detector name ends at the first underscore.
    assert sorted(read_scores_dir(tmp_path / "flat")) == ["perfect"]


def test_evaluate_ranks_detectors_side_by_side(data_dir: Path, tmp_path: Path) -> None:
    write_detector(tmp_path / "a", "perfect")
    write_detector(tmp_path / "b", "silent", fill=0.0)
    noisy = tmp_path / "b"
    for name in LAYOUT:
        scores = perfect_scores(name)
        scores[35] = 0.95  # a false positive before the first window outranks every hit
        write_scores(noisy, "noisy", name, scores)
    reports = evaluate_detectors(data_dir, None, [tmp_path / "a", tmp_path / "b"])
    assert [r.detector for r in reports] == ["perfect", "noisy", "silent"]
    perfect, noisy_report, silent = reports
    for result in perfect.results.values():
        assert result.score == pytest.approx(100.0)
        assert result.threshold == pytest.approx(0.9)
        assert (result.tp_windows, result.fn_windows, result.fp_detections) == (3, 0, 0)
        assert result.mean_delay_rows == 0.0
    standard = noisy_report.results["standard"]
    assert standard.score == pytest.approx(100 * (3 - 2 * 0.11 + 3) / 6)
    assert standard.precision == pytest.approx(3 / 5)
    assert silent.results["standard"].score == 0.0
    assert silent.results["standard"].threshold == float("inf")


def test_run_evaluate_prints_summary_and_per_file_tables(data_dir: Path, tmp_path: Path) -> None:
    write_detector(tmp_path / "scores", "perfect")
    console = Console(record=True, width=200)
    # Plain strings, as the CLI passes them.
    windows = str(data_dir / "windows.json")
    assert run_evaluate(str(data_dir), windows, [str(tmp_path / "scores")], console, True) == 0
    text = console.export_text()
    assert "perfect" in text
    assert "100.0" in text
    assert "reward_low_FN" in text
    assert "catB/two_parts.csv" in text
    assert "2 / 0 / 0" in text


def _error(data_dir: Path, scores: Path) -> str:
    with pytest.raises(UserError) as info:
        evaluate_detectors(data_dir, None, [scores])
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_paths_give_one_line_errors(data_dir: Path, tmp_path: Path) -> None:
    write_detector(tmp_path / "scores", "perfect")
    assert "does not exist" in _error(tmp_path / "nowhere", tmp_path / "scores")
    assert "does not exist" in _error(data_dir, tmp_path / "nowhere")
    assert "no score files" in _error(data_dir, data_dir)
    with pytest.raises(EvaluateError, match="cannot read windows file"):
        evaluate_detectors(data_dir, tmp_path / "none.json", [tmp_path / "scores"])


def test_bad_windows_file_is_refused(data_dir: Path, tmp_path: Path) -> None:
    write_detector(tmp_path / "scores", "perfect")
    (data_dir / "windows.json").write_text("{not json")
    assert "not valid JSON" in _error(data_dir, tmp_path / "scores")
    (data_dir / "windows.json").write_text(json.dumps({"catA/series_one.csv": [["x"]]}))
    assert "[start, end] pairs" in _error(data_dir, tmp_path / "scores")


def test_incomplete_or_mismatched_scores_are_refused(data_dir: Path, tmp_path: Path) -> None:
    scores = tmp_path / "scores"
    write_scores(scores, "half", "catA/series_one.csv", [0.5] * 100)
    assert "half has no scores for catB/two_parts.csv" in _error(data_dir, scores)
    write_scores(scores, "half", "catB/two_parts.csv", [0.5] * 150)
    assert "do not match the data rows (150 scores, 200 data rows)" in _error(data_dir, scores)


@pytest.mark.parametrize(
    ("value", "message"), [("1.5", r"[0, 1]"), ("high", "is not a number"), ("nan", "NaN")]
)
def test_bad_score_values_are_refused(
    data_dir: Path, tmp_path: Path, value: str, message: str
) -> None:
    scores = tmp_path / "scores"
    write_detector(scores, "bad")
    path = scores / "catA" / "bad_series_one.csv"
    lines = path.read_text().splitlines()
    cells = lines[5].split(",")
    cells[2] = value
    lines[5] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    assert message in _error(data_dir, scores)


def test_same_detector_twice_is_refused(data_dir: Path, tmp_path: Path) -> None:
    write_detector(tmp_path / "a", "perfect")
    write_detector(tmp_path / "b", "perfect")
    with pytest.raises(EvaluateError, match="two score files for perfect on catA/series_one"):
        evaluate_detectors(data_dir, None, [tmp_path / "a", tmp_path / "b"])


def test_missing_score_column_is_refused(data_dir: Path, tmp_path: Path) -> None:
    scores = tmp_path / "scores"
    write_csv(scores / "catA" / "x_series_one.csv", ["timestamp", "value"], [[stamp(0), 1]])
    assert "no 'anomaly_score' column" in _error(data_dir, scores)


def test_baseline_backtests_evaluate_beside_each_other(data_dir: Path, tmp_path: Path) -> None:
    """River baselines go through `vigil backtest` (the path Vigil takes) into NAB layout."""
    from pipeline.cli.main import main

    out = tmp_path / "out"
    for detector in ("hst", "snarimax"):
        argv = ["backtest", str(data_dir), "--out", str(out), "--format", "nab"]
        assert main([*argv, "--detector", detector, "--jobs", "1"]) == 0
    with (out / "catB" / "snarimax_two_parts.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    stamps, values = read_series(data_dir / "catB" / "two_parts.csv")
    assert [r["timestamp"] for r in rows] == stamps
    assert [r["value"] for r in rows] == values
    assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in rows)
    reports = evaluate_detectors(data_dir, None, [out])
    assert sorted(r.detector for r in reports) == ["hst", "snarimax"]


def test_perfect_detector_on_the_shipped_sample_scores_100(tmp_path: Path) -> None:
    """Every real window maps onto rows (repeated DST timestamps included)."""
    windows = json.loads((SAMPLE_DIR / "windows.json").read_text())
    for name, pairs in windows.items():
        stamps, _ = read_series(SAMPLE_DIR / name)
        starts = {start.removesuffix(".000000") for start, _ in pairs}
        category, base = name.split("/")
        rows = [[t, 0, 1.0 if t in starts else 0.0, 0] for t in stamps]
        header = ["timestamp", "value", "anomaly_score", "label"]
        write_csv(tmp_path / category / f"perfect_{base}", header, rows)
    [report] = evaluate_detectors(SAMPLE_DIR, None, [tmp_path])
    for result in report.results.values():
        assert result.score == pytest.approx(100.0)
        assert result.tp_windows == sum(len(pairs) for pairs in windows.values())
