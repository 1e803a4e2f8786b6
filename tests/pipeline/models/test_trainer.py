"""Training runs, champion/challenger promotion, the CLI, and the trainer lock (real Redis)."""

from __future__ import annotations

import argparse
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
import torch

from detectors.forecaster import Forecaster, ForecasterConfig
from detectors.training.train import TrainConfig
from pipeline.cli.models import add_commands
from pipeline.local.stack import StackInfo
from pipeline.models.registry import ModelRegistry
from pipeline.models.trainer import Trainer, TrainOptions, train_version
from pipeline.models.training_data import History, StreamSeries
from pipeline.settings import Settings
from pipeline.settings_loader import load_settings
from pipeline.state.redis import open_store
from tests.pipeline.kafka.helpers import test_settings


def cycles(n_streams: int = 16, length: int = 260, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    streams = {}
    for i in range(n_streams):
        base = rng.uniform(10, 100)
        values: list[tuple[float, ...]] = [
            (base * (1 + 0.2 * math.sin(t / 24 * 2 * math.pi)) + float(rng.normal(0, 0.5)),)
            for t in range(length)
        ]
        streams[f"s{i}"] = StreamSeries(("value",), list(range(length)), values)
    return History(streams, "test", records=n_streams * length)


def setup(stack: StackInfo, topic_names: Any, tmp_path: Path) -> tuple[Settings, ModelRegistry]:
    s = test_settings(stack, topic_names, model_dir=str(tmp_path / "models"), device="cpu")
    return s, ModelRegistry(s, open_store(s))


def quick(epochs: int = 3, lr: float = 3e-3) -> TrainConfig:
    return TrainConfig(epochs=epochs, seq_len=32, burn_in=4, lr=lr, batch_size=32)


def test_a_better_challenger_is_promoted(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    s, registry = setup(stack, topic_names, tmp_path)
    torch.manual_seed(5)
    untrained = registry.register(
        Forecaster(ForecasterConfig()), window={}, metrics={}, device="cpu", parent=None
    )
    registry.promote(untrained.id)

    outcome = train_version(s, registry, cycles(), TrainOptions(train=quick()))

    assert outcome.champion == untrained.id
    assert outcome.champion_loss is not None
    assert outcome.challenger_loss < outcome.champion_loss
    assert outcome.promoted
    assert registry.live_id() == outcome.version.id
    meta = registry.get(outcome.version.id)
    assert meta.parent == untrained.id
    assert meta.metrics["champion_loss"] == outcome.champion_loss
    assert meta.window["streams"] == 16 and meta.device == "cpu"


def test_a_worse_challenger_is_registered_but_not_promoted(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    s, registry = setup(stack, topic_names, tmp_path)
    options = TrainOptions(scratch=True, train=quick(epochs=1, lr=1e-7))

    outcome = train_version(s, registry, cycles(), options)

    assert outcome.champion.startswith("generic-gru-h64-")
    assert outcome.champion_loss is not None
    assert outcome.challenger_loss > outcome.champion_loss
    assert not outcome.promoted
    assert registry.live_id() is None
    assert registry.get(outcome.version.id).status == "rejected"
    assert registry.get(outcome.version.id).parent is None

    forced = train_version(
        s, registry, cycles(), TrainOptions(scratch=True, promote="force", train=quick(1, 1e-7))
    )
    assert forced.promoted and registry.live_id() == forced.version.id


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def test_vigil_train_and_models_commands(
    stack: StackInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("VIGIL_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("VIGIL_REDIS_PREFIX", "cli-test")
    redis.Redis.from_url(stack.redis_url).flushall()
    csv = tmp_path / "series.csv"
    rows = ["timestamp,value"] + [
        f"{1_763_700_000 + t * 60},{50 + 10 * math.sin(t / 12):.3f}" for t in range(300)
    ]
    csv.write_text("\n".join(rows) + "\n")
    common = ["--redis-url", stack.redis_url]

    code = cli(["train", *common, "--csv", str(csv), "--epochs", "2", "--seq-len", "32",
                "--promote", "never"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "held-out loss: new" in out and "not promoted" in out
    settings = load_settings(None, redis_url=stack.redis_url)  # env gives dir and prefix
    registry = ModelRegistry(settings, open_store(settings))
    (version,) = registry.versions()

    assert cli(["models", *common, "promote", version.id]) == 0
    assert registry.live_id() == version.id
    assert cli(["models", *common, "list"]) == 0
    listing = capsys.readouterr().out
    assert version.id[:12] in listing and "live" in listing
    assert cli(["models", *common, "rollback"]) == 0
    assert registry.live_id() is None

    from pipeline.errors import UserError

    with pytest.raises(UserError, match="no model version"):
        cli(["models", *common, "promote", "v0099-gru-h64-00000000"])
    with pytest.raises(UserError, match=r"missing\.csv: no such file or folder"):
        cli(["train", *common, "--csv", str(tmp_path / "missing.csv")])


# --- the lock ---------------------------------------------------------------------------
def test_two_trainers_never_train_at_once(stack: StackInfo, topic_names: Any) -> None:
    s = test_settings(stack, topic_names, trainer_lock_seconds=1.0)
    inside = threading.Event()
    release = threading.Event()
    ran: list[str] = []
    owned: list[bool] = []

    def slow_job(reason: str, still_owner: Any) -> None:
        ran.append(reason)
        inside.set()
        release.wait(30)
        owned.append(still_owner())

    clients = [redis.Redis.from_url(stack.redis_url) for _ in range(2)]
    first, second = (Trainer(s, c, slow_job) for c in clients)
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(first.run_once("schedule")))
    thread.start()
    assert inside.wait(30)
    # Longer than the lock's TTL: the owner's renewals must keep it.
    time.sleep(1.5)
    assert second.run_once("schedule") is False
    assert second.lock.release() is False  # a non-owner cannot free it
    release.set()
    thread.join(30)
    assert results == [True] and ran == ["schedule"]
    assert owned == [True]  # the lock never lapsed while the job ran
    assert first.runs == 1 and second.runs == 0
    # Released by its owner: the other replica can train now.
    assert second.run_once("schedule") is True
    assert ran == ["schedule", "schedule"]


def test_requests_collapse_into_one_run(stack: StackInfo, topic_names: Any) -> None:
    s = test_settings(stack, topic_names)
    ran: list[str] = []
    trainer = Trainer(s, redis.Redis.from_url(stack.redis_url), lambda r, _: ran.append(r))
    assert trainer.poll_requests() is False
    trainer.request()
    trainer.request()
    assert trainer.poll_requests() is True
    assert trainer.poll_requests() is False
    assert ran == ["request"]
