"""`vigil backtest --retrain-every` and `--model`: the trainer's loop and registry versions,
replayed on Mackey-Glass series generated here (no shared data)."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from detectors.evaluation.mackey_glass import with_anomalies
from pipeline.cli.main import main
from pipeline.evaluation.retrain import parse_duration
from pipeline.models.registry import ModelRegistry
from pipeline.models.serving import load_shipped_model
from pipeline.settings import Settings
from pipeline.state.memory import MemoryStateStore

ROWS = 2000


def scores(path: Path) -> np.ndarray:
    with path.open(newline="") as fh:
        return np.array([float(r["anomaly_score"]) for r in csv.DictReader(fh)])


@pytest.fixture(autouse=True)
def few_epochs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop's cost is the trainer's; three epochs show the same behaviour sooner."""
    monkeypatch.setenv("VIGIL_TRAIN_EPOCHS", "3")


@pytest.fixture(scope="module")
def plain(mg_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model's backtest of ``mg_data``, shared by the comparisons."""
    out = tmp_path_factory.mktemp("plain")
    assert main(["backtest", str(mg_data), "--out", str(out), "--jobs", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def mg_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two Mackey-Glass series, one per second, in one category folder."""
    root = tmp_path_factory.mktemp("mg") / "data"
    (root / "mg").mkdir(parents=True)
    start = np.datetime64("2020-01-01T00:00:00")
    stamps = [str(start + np.timedelta64(t, "s")).replace("T", " ") for t in range(ROWS)]
    labels = {}
    for i in range(2):
        values, windows = with_anomalies(ROWS, 2, seed=i)
        with (root / "mg" / f"mg_{i}.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", "value"])
            writer.writerows(zip(stamps, values, strict=True))
        labels[f"mg/mg_{i}.csv"] = [[stamps[a], stamps[b]] for a, b in windows]
    (root / "windows.json").write_text(json.dumps(labels))
    return root


def test_retrain_loop_trains_promotes_and_changes_only_later_scores(
    mg_data: Path, plain: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    looped = tmp_path / "looped"
    argv = ["backtest", str(mg_data), "--out", str(looped), "--retrain-every", "10m"]
    assert main(argv) == 0
    assert "Trainer runs replayed" in capsys.readouterr().out
    runs = json.loads((looped / "retrain.json").read_text())
    assert [r["at_ms"] - runs[0]["at_ms"] for r in runs] == [0, 600_000, 1_200_000]
    assert [r["events"] for r in runs] == [2 * 600, 2 * 1200, 2 * 1800]
    assert runs[0]["promoted"]  # the generic model has never seen this dynamics
    assert runs[0]["challenger_loss"] < runs[0]["champion_loss"]
    for name in ("mg/mg_0.csv", "mg/mg_1.csv"):
        a, b = scores(plain / name), scores(looped / name)
        # causal: up to the first boundary (row 600) the same model scored the same rows
        np.testing.assert_allclose(a[:600], b[:600], atol=1e-5)
        assert not np.allclose(a[600:], b[600:], atol=1e-3)


def test_model_version_replays_that_version(
    mg_data: Path, plain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry_dir = tmp_path / "models"
    monkeypatch.setenv("VIGIL_MODEL_DIR", str(registry_dir))
    settings = Settings()
    registry = ModelRegistry(settings, MemoryStateStore(), registry_dir)
    model = copy.deepcopy(load_shipped_model(settings).model)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    version = registry.register(model, window={}, metrics={}, device="cpu", parent=None)
    other = tmp_path / "other"
    argv = ["backtest", str(mg_data), "--out", str(other), "--jobs", "1", "--model", version.id]
    assert main(argv) == 0
    assert not np.allclose(scores(plain / "mg/mg_0.csv"), scores(other / "mg/mg_0.csv"))


def test_unknown_version_and_bad_duration_are_one_line_errors(
    mg_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["backtest", str(mg_data), "--out", str(tmp_path / "x"), "--jobs", "1"]
    assert main([*argv, "--model", "v0042-gru-h64-deadbeef"]) == 2
    assert "v0042-gru-h64-deadbeef" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--retrain-every", "soon"])
    assert exit_info.value.code == 2
    assert "duration 'soon'" in capsys.readouterr().err


def test_durations() -> None:
    assert parse_duration("90") == 90.0 and parse_duration("30m") == 1800.0
    assert parse_duration("6h") == 21600.0 and parse_duration("1.5d") == 129600.0
    for bad in ("", "0", "5w", "-1h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_report_writes_the_event_wise_tables_and_the_bar(mg_data: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    out = tmp_path / "report.md"
    argv = ["report", "--mgab", str(mg_data), "--retrain-every", "10m", "--work", str(work)]
    assert main([*argv, "--out", str(out)]) == 0
    text = out.read_text()
    assert "vigil report --out" in text and "--retrain-every 10m" in text
    assert "Event-wise at the alert threshold: vigil, shipped model" in text
    assert "Event-wise at the alert threshold: vigil, trainer's loop every 10m" in text
    assert "Trainer runs replayed" in text and "| 2020-01-01T00:10:00.000 | 1,200 |" in text
    bar = text[text.index("Issue 12's bar") :]
    assert f"{mg_data.name}: windows found with the loop | " in bar
    assert "precision >= 0.8 |" in bar
    assert (work / "mgab-retrain" / "retrain.json").exists()


def test_report_with_nothing_to_score_is_one_line_not_an_empty_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.md"
    assert main(["report", "--out", str(out), "--work", str(tmp_path / "work")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vigil: nothing to report: give --nab DIR") and "\n" not in err
    assert "nab_sample" in err  # points a plain clone at the data it ships
    assert not out.exists()
