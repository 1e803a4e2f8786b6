"""`vigil models list` prints whole version ids, whatever the terminal's width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from detectors.forecaster import Forecaster, ForecasterConfig
from pipeline.cli.main import main
from pipeline.local.stack import StackInfo
from pipeline.models.registry import ModelRegistry
from pipeline.state.redis import open_store
from tests.pipeline.kafka.helpers import test_settings


@pytest.mark.parametrize("columns", ["30", "200"])
def test_version_ids_are_never_truncated(
    stack: StackInfo,
    topic_names: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    columns: str,
) -> None:
    settings = test_settings(stack, topic_names, model_dir=str(tmp_path / "models"))
    registry = ModelRegistry(settings, open_store(settings))
    torch.manual_seed(0)
    version = registry.register(
        Forecaster(ForecasterConfig("gru", 64, 4)),
        window={"events": 10}, metrics={"held_out_loss": 0.1}, device="cpu", parent=None,
    )  # fmt: skip
    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setenv("VIGIL_MODEL_DIR", settings.model_dir)
    monkeypatch.setenv("VIGIL_REDIS_PREFIX", settings.redis_prefix)
    assert main(["models", "list", "--redis-url", stack.redis_url]) == 0
    out = capsys.readouterr().out
    assert version.id in out and registry.shipped_id() in out
