"""The small synthetic suite end to end: generated, back-tested, scored, printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detectors.evaluation.anomaly_kinds import FAILURE_MODES, GENERATED
from detectors.evaluation.synthetic_suite import generate_case, suite_cases
from pipeline.cli.main import main
from pipeline.evaluation.evaluate import read_windows


def test_small_suite_runs_through_backtest_and_prints_every_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    work = tmp_path / "suite"
    args = ["evaluate", "--suite", "synthetic", "--size", "small", "--work", str(work)]
    assert main([*args, "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    matrix = out[out.index("Recall per kind") : out.index("False alerts per stream-week")]
    rows = {line.split()[0]: line.split() for line in matrix.splitlines() if line.strip()}
    for kind in (*GENERATED, *FAILURE_MODES):
        assert kind in rows, kind
        assert any("(" in cell for cell in rows[kind]), f"{kind} has no recall figure"
    assert "Bar (issue 12)" in out
    cases = suite_cases("small")
    scores = list((work / "scores").rglob("vigil_*.csv"))
    assert len(scores) == len(cases)
    # the labels written are the generated ones, readable by the NAB evaluator
    windows = read_windows(work / "data" / "windows.json")
    first = generate_case(cases[0])
    assert len(windows[cases[0].file]) == len(first.windows)
    assert json.loads((work / "data" / "windows.json").read_text()).keys() == {
        c.file for c in cases
    }
