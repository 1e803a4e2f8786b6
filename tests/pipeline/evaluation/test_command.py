"""`vigil evaluate` beyond the swept NAB score: alert threshold, LOCO, comparison, event-wise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli.main import main
from tests.pipeline.evaluation.test_evaluate import LAYOUT, data_dir, write_scores

__all__ = ["data_dir"]  # the fixture, used by name


def write_run(root: Path, detector: str, hit: set[str]) -> Path:
    """Scores 0 everywhere, 0.9 at the first row of each window of the files in ``hit``."""
    for name, (n, windows) in LAYOUT.items():
        scores = [0.0] * n
        if name in hit:
            for first, _ in windows:
                scores[first] = 0.9
        write_scores(root, detector, name, scores)
    return root


def test_alert_threshold_and_leave_one_category_out(
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scores = write_run(tmp_path / "run", "vigil", set(LAYOUT))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["evaluate", "--data", str(data_dir), "--scores", str(scores)]) == 0
    out = capsys.readouterr().out
    alerted = out[out.index("alert threshold") : out.index("Leave-one-category-out")]
    row = next(line for line in alerted.splitlines() if line.strip().startswith("vigil"))
    assert row.split()[1:4] == ["100.0", "100.0", "100.0"]  # perfect without a sweep
    # between those two: the false alerts per stream-week, one row per category
    rows = {
        line.split()[0]: line.split()[1]
        for line in alerted.splitlines()
        if line.strip().startswith(("catA", "catB"))
    }
    assert rows == {"catA": "0.00", "catB": "0.00"}  # every alert inside a window
    loco = out[out.index("Leave-one-category-out") :]
    assert "catA" in loco and "catB" in loco and "mean" in loco


def test_compare_names_the_files_carrying_the_gain(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = write_run(tmp_path / "before", "vigil", set())
    after = write_run(tmp_path / "after", "vigil", {"catB/two_parts.csv"})
    code = main(["evaluate", "--data", str(data_dir), "--compare", str(before), str(after)])
    assert code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "1 file(s) carry 100% of the gain" in out and "noise, not progress" in out
    assert out.index("catB/two_parts.csv") < out.index("catA/series_one.csv")


def test_event_wise_counts_windows_and_alerts(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = write_run(tmp_path / "run", "vigil", {"catB/two_parts.csv"})
    args = ["evaluate", "--data", str(data_dir), "--scores", str(scores), "--event-wise"]
    assert main([*args, "--warmup", "0"]) == 0
    last = capsys.readouterr().out.strip().splitlines()
    total = next(line for line in last if line.strip().startswith("all")).split()
    assert total[1:5] == ["3", "2", "2", "2"]  # windows, found, alerts, inside


def test_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--scores", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vigil: give --data") and len(err.strip().splitlines()) == 1
    assert main(["evaluate", "--data", str(tmp_path / "nope"), "--scores", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_flat_corpus_is_read_like_mgab(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """MGAB keeps its series beside windows.json (no category folder); backtest writes
    them below the data folder's name."""
    data = tmp_path / "mgab"
    data.mkdir()
    stamps = [f"2020-01-01 00:{m:02d}:00" for m in range(60)]
    (data / "s_1.csv").write_text("timestamp,value\n" + "".join(f"{t},1\n" for t in stamps))
    (data / "windows.json").write_text(json.dumps({"s_1.csv": [[stamps[30], stamps[39]]]}))
    scores = [0.0] * 60
    scores[35] = scores[50] = 0.9
    out = tmp_path / "out" / "mgab"
    out.mkdir(parents=True)
    rows = "".join(f"{t},1,{s},0\n" for t, s in zip(stamps, scores, strict=True))
    (out / "vigil_s_1.csv").write_text("timestamp,value,anomaly_score,label\n" + rows)
    argv = ["evaluate", "--data", str(data), "--scores", str(out.parent), "--event-wise"]
    assert main([*argv, "--warmup", "10"]) == 0
    total = next(
        line.split()
        for line in capsys.readouterr().out.splitlines()
        if line.strip().startswith("all")
    )
    assert total[1:6] == ["1", "1", "2", "1", "0.50"]
