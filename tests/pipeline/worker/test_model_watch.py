"""The worker-side watcher against the session's real Redis and a real registry folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from detectors.forecaster import Forecaster, ForecasterConfig
from pipeline.local.stack import StackInfo
from pipeline.models.registry import ModelRegistry
from pipeline.state.redis import open_store
from pipeline.worker.model_watch import ModelWatcher
from tests.pipeline.kafka.helpers import test_settings


class FakeClock:
    """Time the test moves by hand (the watcher's throttle is what is under test)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def setup(stack: StackInfo, topic_names: Any, tmp_path: Path) -> tuple[ModelRegistry, Any]:
    s = test_settings(stack, topic_names, model_dir=str(tmp_path / "m"), model_poll_seconds=2.0)
    store = open_store(s)
    return ModelRegistry(s, store), s


def new_version(registry: ModelRegistry, seed: int) -> str:
    torch.manual_seed(seed)
    model = Forecaster(ForecasterConfig())
    return registry.register(model, window={}, metrics={}, device="cpu", parent=None).id


def test_picks_up_a_promoted_version_and_a_rollback(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    registry, s = setup(stack, topic_names, tmp_path)
    clock = FakeClock()
    # Another process (a CLI, the trainer) promotes: the watcher has its own registry.
    watcher = ModelWatcher(ModelRegistry(s, open_store(s)), s.model_poll_seconds, clock=clock)
    assert watcher.version == registry.shipped_id()
    vid = new_version(registry, 1)

    registry.promote(vid)
    assert watcher.poll() is None  # not yet: checks at most every model_poll_seconds
    clock.now += 2.0
    loaded = watcher.poll()
    assert loaded is not None and loaded.version == vid
    assert loaded.sha256 == registry.get(vid).sha256
    clock.now += 2.0
    assert watcher.poll() is None  # unchanged

    registry.rollback()
    clock.now += 2.0
    back = watcher.poll()
    assert back is not None and back.version == registry.shipped_id()


def test_a_corrupt_version_is_refused_once_and_the_current_kept(
    stack: StackInfo, topic_names: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry, s = setup(stack, topic_names, tmp_path)
    clock = FakeClock()
    watcher = ModelWatcher(ModelRegistry(s, open_store(s)), s.model_poll_seconds, clock=clock)
    good = new_version(registry, 1)
    registry.promote(good)
    clock.now += 2.0
    assert watcher.poll() is not None

    bad = new_version(registry, 2)
    registry.promote(bad)  # verified at promotion time...
    weights = registry.root / bad / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")  # ...then damaged on disk

    with caplog.at_level(logging.ERROR, logger="pipeline.worker.model_watch"):
        clock.now += 2.0
        assert watcher.poll() is None
        for _ in range(5):
            clock.now += 2.0
            assert watcher.poll() is None
    assert watcher.version == good
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # remembered: not retried every batch
    assert "does not match" in errors[0].getMessage() and good in errors[0].getMessage()

    # A fixed, newer promotion is picked up again.
    fixed = new_version(registry, 3)
    registry.promote(fixed)
    clock.now += 2.0
    loaded = watcher.poll()
    assert loaded is not None and loaded.version == fixed
