"""The multivariate machine suite end to end: generated, back-tested, scored, printed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.evaluation.machine_suite import KINDS, generate_machine, machine_cases
from detectors.evaluation.pointwise import PointCounts, point_counts
from pipeline.cli.main import main
from pipeline.contracts.csvfile import read_csv_table
from pipeline.evaluation.machines import MachineOutcome, machine_grids
from pipeline.settings import Settings


def test_small_machine_suite_runs_through_backtest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    work = tmp_path / "machines"
    args = ["evaluate", "--suite", "machines", "--size", "small", "--work", str(work)]
    assert main([*args, "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "Bar (issue 13)" in out
    matrix = out[: out.index("Bar (issue 13)")]
    rows = {line.split()[0]: line.split() for line in matrix.splitlines() if line.strip()}
    threshold = Settings().alert_threshold
    for case in machine_cases("small"):
        series = generate_machine(case)
        table = read_csv_table(work / "scores" / case.file)
        assert table.numbers(["value", "value_4"]).shape == (len(series.ts_ms), 2)
        flagged = table.numbers(["anomaly_score"])[:, 0] >= threshold
        counts = point_counts(flagged, series.labels())
        # the printed false-alarm rate of each kind is the one its score file gives
        assert rows[case.kind][6] == f"{counts.false_alarm_rate:.2f}", case.kind
    for kind in KINDS:
        assert f"{kind}: events found" in out


def test_grids_name_the_widths_not_replayed() -> None:
    found = generate_machine(machine_cases("small")[0])
    outcome = MachineOutcome(found, True, PointCounts(tp=3, fp=1, fn=1, tn=95))
    grid, bar = machine_grids([outcome], skipped=[8])
    assert "8-sensor machines" in grid.caption
    assert np.isclose(outcome.points.false_alarm_rate, 1 / 96)
    assert len(bar.rows) == len(KINDS) + 1
