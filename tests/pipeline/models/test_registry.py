"""The model registry on a real directory with the live pointer in the session's Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from detectors.forecaster import Forecaster, ForecasterConfig
from pipeline.local.stack import StackInfo
from pipeline.models.registry import ModelRegistry, RegistryError
from pipeline.state.redis import open_store
from tests.pipeline.kafka.helpers import test_settings


def make_registry(stack: StackInfo, topic_names: Any, tmp_path: Path) -> ModelRegistry:
    settings = test_settings(stack, topic_names, model_dir=str(tmp_path / "models"))
    return ModelRegistry(settings, open_store(settings))


def random_model(seed: int, kind: str = "gru", hidden: int = 64) -> Forecaster:
    torch.manual_seed(seed)
    return Forecaster(ForecasterConfig(kind, hidden, 4))  # type: ignore[arg-type]


def register(registry: ModelRegistry, seed: int, **kw: Any) -> str:
    version = registry.register(
        random_model(seed, **kw),
        window={"events": 10},
        metrics={"held_out_loss": 0.1},
        device="cpu",
        parent=None,
    )
    return version.id


def test_round_trip_keeps_weights_and_metadata(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    registry = make_registry(stack, topic_names, tmp_path)
    model = random_model(1)
    version = registry.register(
        model, window={"events": 123}, metrics={"held_out_loss": 0.5}, device="cpu", parent="p"
    )

    assert version.id.startswith("v0001-gru-h64-")
    assert version.id.endswith(version.sha256[:8])
    meta = json.loads((registry.root / version.id / "meta.json").read_text())
    assert meta["window"] == {"events": 123}
    assert meta["config"] == {"kind": "gru", "hidden_size": 64, "max_features": 4, "horizon": 18}
    assert meta["parent"] == "p" and meta["device"] == "cpu"
    loaded = registry.load(version.id)
    assert loaded.version == version.id and loaded.sha256 == version.sha256
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], tensor)
    second = register(registry, 2)
    assert second.startswith("v0002-")
    assert [v.id for v in registry.versions()] == [version.id, second]


def test_nothing_live_means_the_shipped_model(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    registry = make_registry(stack, topic_names, tmp_path)
    assert registry.live_id() is None
    assert registry.live_model().version.startswith("generic-gru-h64-")
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()


def test_changed_weights_are_refused(stack: StackInfo, topic_names: Any, tmp_path: Path) -> None:
    registry = make_registry(stack, topic_names, tmp_path)
    vid = register(registry, 1)
    weights = registry.root / vid / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[-20] ^= 0xFF
    weights.write_bytes(bytes(data))

    with pytest.raises(RegistryError, match="does not match"):
        registry.load(vid)
    with pytest.raises(RegistryError, match="does not match"):
        registry.promote(vid)
    assert registry.live_id() is None  # a refused promotion leaves the live model alone


def test_weights_that_fail_to_load_are_refused(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    registry = make_registry(stack, topic_names, tmp_path)
    vid = register(registry, 1)
    folder = registry.root / vid
    garbage = b"not a checkpoint"
    (folder / "weights.pt").write_bytes(garbage)
    meta = json.loads((folder / "meta.json").read_text())
    import hashlib

    meta["sha256"] = hashlib.sha256(garbage).hexdigest()  # consistent sha, unloadable bytes
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RegistryError, match="fails to load"):
        registry.load(vid)
    with pytest.raises(RegistryError, match="no model version"):
        registry.load("v9999-gru-h64-deadbeef")
    with pytest.raises(RegistryError, match="no model version"):
        registry.load("../../etc/passwd")


def test_promote_and_rollback_walk_the_history(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    registry = make_registry(stack, topic_names, tmp_path)
    shipped = registry.shipped_id()
    a, b = register(registry, 1), register(registry, 2)

    registry.promote(a)
    registry.promote(b)
    assert registry.live_id() == b
    assert registry.store.get_meta("live_model") == b.encode()  # what every worker reads
    mirror = json.loads((registry.root / "live.json").read_text())
    assert mirror["live"] == b and mirror["history"] == [shipped, a]
    statuses = {v.id: v.status for v in registry.versions()}
    assert statuses == {a: "retired", b: "live"}

    assert registry.rollback() == a
    assert registry.live_model().version == a
    assert {v.id: v.status for v in registry.versions()}[b] == "rolled-back"
    assert registry.rollback() == shipped
    assert registry.live_id() is None
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()
    with pytest.raises(RegistryError, match="already live"):
        registry.promote(shipped)


def test_pods_without_the_folder_serve_live_versions_from_redis(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    """The trainer's registry has the folder; a worker's (same Redis, empty folder) does
    not, as on Kubernetes with a ReadWriteOnce volume mounted by the trainer alone."""
    trainer = make_registry(stack, topic_names, tmp_path)
    worker = ModelRegistry(trainer.settings, trainer.store, root=tmp_path / "no-volume")
    a, b, candidate = register(trainer, 1), register(trainer, 2), register(trainer, 3)
    with pytest.raises(RegistryError, match="no model version"):
        worker.load(a)  # never live: never published

    trainer.promote(a)
    trainer.promote(b)
    served = worker.live_model()
    assert served.version == b
    expected = trainer.load(b).model.state_dict()
    for name, tensor in served.model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert worker.load(a).version == a  # the rollback target is there too
    assert {v.id: v.status for v in worker.versions()} == {a: "retired", b: "live"}
    assert candidate not in {v.id for v in worker.versions()}
    assert not (tmp_path / "no-volume").exists()

    trainer.store.set_meta(f"weights:{b}", b"tampered")
    with pytest.raises(RegistryError, match="does not match"):
        worker.load(b)
    trainer.publish(trainer.live_id())  # what `vigil trainer` does when it starts
    assert worker.load(b).version == b

    trainer.rollback()  # b is neither live nor in the history now: its copy goes
    with pytest.raises(RegistryError, match="no model version"):
        worker.load(b)
    assert worker.live_model().version == a


def test_redis_keeps_copies_of_the_live_version_and_its_history_only(
    stack: StackInfo, topic_names: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.models.registry.HISTORY_KEPT", 2)
    trainer = make_registry(stack, topic_names, tmp_path)
    worker = ModelRegistry(trainer.settings, trainer.store, root=tmp_path / "no-volume")
    ids = [register(trainer, seed) for seed in range(4)]
    for version in ids:
        trainer.promote(version)
    assert trainer.history() == ids[1:3] and trainer.live_id() == ids[3]
    for version in ids[1:]:
        assert worker.load(version).version == version
    with pytest.raises(RegistryError, match="no model version"):
        worker.load(ids[0])
    assert trainer.load(ids[0]).version == ids[0]  # the folder keeps every version


def test_promotion_refuses_another_state_shape(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    registry = make_registry(stack, topic_names, tmp_path)
    wide = register(registry, 1, hidden=32)
    with pytest.raises(RegistryError, match="per-stream states"):
        registry.promote(wide)
    # An LSTM with half the hidden size keeps the record's shape: allowed (re-warms).
    same_shape = register(registry, 2, kind="lstm", hidden=32)
    registry.promote(same_shape)
    assert registry.live_id() == same_shape
