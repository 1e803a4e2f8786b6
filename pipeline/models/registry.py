"""The model registry: versions on a directory, the live pointer in Redis.

Each version is a folder under the registry root (`settings.model_dir`, default
`vigil_home()/models`) holding `weights.pt` (checkpoint bytes: a `torch.save` dict loaded
with `weights_only=True`, so loading never unpickles code) and `meta.json`. A folder is
written under a temporary name and renamed into place, so a reader never sees half a
version.

Which version is live lives in Redis (`live_model` meta), because every worker already
talks to Redis and must agree on it; the folder keeps a mirror (`live.json`) for people
and backups. A version that goes live is also published to Redis (its meta.json and
weights, 60-80 KB), before the pointer moves: workers and the API read a version from the
folder when they have it and from Redis otherwise, so only the trainer needs the folder,
and on Kubernetes it can be a ReadWriteOnce volume mounted by the trainer alone. When
nothing is live, the generic model shipped in `detectors` is the implicit version, so a
fresh install serves at once.

Promotion refuses a version whose per-stream state record would have another shape
(state size or feature slots): the workers' stored states would become unreadable. A
change of model kind or size that keeps the shape (e.g. GRU h64 and LSTM h32) is fine:
each stream re-warms its hidden state from its ring buffer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from detectors.forecaster import Forecaster, LoadedModel, checkpoint_bytes, load_checkpoint
from pipeline.models.serving import load_shipped_model
from pipeline.settings import Settings, vigil_home
from pipeline.state.base import StateStore

LIVE_KEY = "live_model"
HISTORY_KEY = "live_history"
WEIGHTS = "weights.pt"
META = "meta.json"
MIRROR = "live.json"
PUBLISHED_META = "version:"
PUBLISHED_WEIGHTS = "weights:"
PUBLISHED = (PUBLISHED_META, PUBLISHED_WEIGHTS)
HISTORY_KEPT = 50
_VERSION_RE = re.compile(r"^v(\d{4,})-(gru|lstm)-h(\d+)-([0-9a-f]{8})$")


class RegistryError(Exception):
    """A registry request that cannot be honoured; the message is one clear line."""


@dataclass(frozen=True)
class ModelVersion:
    """What `meta.json` records about one version (status is derived for the live one)."""

    id: str
    created: float
    config: dict[str, Any]
    window: dict[str, Any]
    metrics: dict[str, Any]
    device: str
    sha256: str
    parent: str | None
    status: str = "candidate"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelVersion:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("meta.json is not an object")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def registry_root(settings: Settings) -> Path:
    return Path(settings.model_dir) if settings.model_dir else vigil_home() / "models"


def _state_shape(loaded: LoadedModel) -> tuple[int, int]:
    return loaded.config.state_size, loaded.config.max_features


class ModelRegistry:
    """Versions under `root`; the live pointer and its history in `store`'s meta values."""

    def __init__(self, settings: Settings, store: StateStore, root: Path | None = None) -> None:
        self.settings = settings
        self.store = store
        self.root = root if root is not None else registry_root(settings)
        self._shipped: LoadedModel | None = None

    # --- the implicit generic version ----------------------------------------------------
    def shipped(self) -> LoadedModel:
        """The generic model shipped with `detectors` (loaded once, then cached)."""
        if self._shipped is None:
            self._shipped = load_shipped_model(self.settings)
        return self._shipped

    def shipped_id(self) -> str:
        return self.shipped().version

    # --- reading --------------------------------------------------------------------------
    def _folder(self, version_id: str) -> Path:
        if not _VERSION_RE.match(version_id):
            raise RegistryError(f"no model version {version_id!r} (see `vigil models list`)")
        return self.root / version_id

    def get(self, version_id: str) -> ModelVersion:
        folder = self._folder(version_id)
        try:
            text = (folder / META).read_text()
        except FileNotFoundError:
            published = self.store.get_meta(PUBLISHED_META + version_id)
            if published is None:
                raise RegistryError(f"no model version {version_id!r} in {self.root}") from None
            text = published.decode()
        except OSError as exc:
            raise RegistryError(
                f"model version {version_id} has unreadable metadata: {exc}"
            ) from None
        try:
            return ModelVersion.from_json(text)
        except (ValueError, TypeError) as exc:
            raise RegistryError(
                f"model version {version_id} has unreadable metadata: {exc}"
            ) from None

    def versions(self) -> list[ModelVersion]:
        """Registered versions, oldest first; the live one has status "live"."""
        live = self.live_id()
        names = {f.name for f in self.root.iterdir()} if self.root.is_dir() else set()
        # Without the folder (a worker or API pod), the versions that were live are the
        # ones published to Redis.
        names |= {v for v in [*self.history(), live] if v and v != self.shipped_id()}
        found = []
        for name in names:
            match = _VERSION_RE.match(name)
            if match is None:
                continue
            try:
                version = self.get(name)
            except RegistryError:
                continue
            if version.id == live:
                version = ModelVersion(**{**asdict(version), "status": "live"})
            found.append((int(match.group(1)), version))
        return [v for _, v in sorted(found, key=lambda item: item[0])]

    def live_id(self) -> str | None:
        """The promoted version, or None when the shipped generic model is served."""
        raw = self.store.get_meta(LIVE_KEY)
        if not raw:
            return None
        value = raw.decode()
        return None if value == self.shipped_id() else value

    def history(self) -> list[str]:
        """Previously live versions, oldest first (what rollback walks back through)."""
        raw = self.store.get_meta(HISTORY_KEY)
        if not raw:
            return []
        try:
            data = json.loads(raw)
        except ValueError:
            return []
        return [str(v) for v in data] if isinstance(data, list) else []

    def load(self, version_id: str) -> LoadedModel:
        """Load a version after checking its weights against the recorded sha256."""
        if version_id == self.shipped_id():
            return self.shipped()
        meta = self.get(version_id)
        try:
            data = (self._folder(version_id) / WEIGHTS).read_bytes()
        except OSError as exc:
            published = self.store.get_meta(PUBLISHED_WEIGHTS + version_id)
            if published is None:
                raise RegistryError(
                    f"model version {version_id}: cannot read weights: {exc}"
                ) from None
            data = published
        digest = hashlib.sha256(data).hexdigest()
        if digest != meta.sha256:
            raise RegistryError(
                f"model version {version_id}: weights sha256 {digest[:12]} does not match "
                f"the recorded {meta.sha256[:12]}; refusing to load"
            )
        try:
            loaded = load_checkpoint(data, version=version_id)
        except Exception as exc:  # any failure to rebuild the module is the same refusal
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RegistryError(f"model version {version_id} fails to load: {first}") from None
        return loaded

    def live_model(self) -> LoadedModel:
        """The model workers should serve now."""
        live = self.live_id()
        return self.shipped() if live is None else self.load(live)

    # --- writing --------------------------------------------------------------------------
    def _next_number(self) -> int:
        numbers = [0]
        if self.root.is_dir():
            for folder in self.root.iterdir():
                match = _VERSION_RE.match(folder.name)
                if match:
                    numbers.append(int(match.group(1)))
        return max(numbers) + 1

    def register(
        self,
        model: Forecaster,
        *,
        window: dict[str, Any],
        metrics: dict[str, Any],
        device: str,
        parent: str | None,
        status: str = "candidate",
    ) -> ModelVersion:
        """Write a new version (weights + meta.json) and return its record."""
        data = checkpoint_bytes(model)
        digest = hashlib.sha256(data).hexdigest()
        cfg = model.config
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            (staging / WEIGHTS).write_bytes(data)
            for _ in range(100):
                number = self._next_number()
                version = ModelVersion(
                    id=f"v{number:04d}-{cfg.kind}-h{cfg.hidden_size}-{digest[:8]}",
                    created=time.time(),
                    config=asdict(cfg),
                    window=window,
                    metrics=metrics,
                    device=device,
                    sha256=digest,
                    parent=parent,
                    status=status,
                )
                (staging / META).write_text(version.to_json())
                try:
                    # rename fails if another registrar took this number meanwhile
                    os.rename(staging, self.root / version.id)
                except OSError:
                    continue
                return version
            raise RegistryError(f"could not find a free version number in {self.root}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _set_status(self, version_id: str, status: str) -> None:
        if version_id == self.shipped_id():
            return
        try:
            meta = self.get(version_id)
        except RegistryError:
            return
        text = ModelVersion(**{**asdict(meta), "status": status}).to_json()
        if self.store.get_meta(PUBLISHED_META + version_id) is not None:
            self.store.set_meta(PUBLISHED_META + version_id, text.encode())
        path = self._folder(version_id) / META
        if not path.parent.is_dir():
            return  # known from Redis only: its folder is on another volume
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def publish(self, version_id: str | None) -> None:
        """Copy a version into Redis for the pods that do not mount the folder (nothing
        for None or the shipped model, which every install has)."""
        if version_id is None or version_id == self.shipped_id():
            return
        folder = self._folder(version_id)
        try:
            meta, weights = (folder / META).read_bytes(), (folder / WEIGHTS).read_bytes()
        except FileNotFoundError:
            return  # not in this folder: published when it went live elsewhere
        self.store.set_meta(PUBLISHED_WEIGHTS + version_id, weights)
        self.store.set_meta(PUBLISHED_META + version_id, meta)

    def _set_live(self, version_id: str, history: list[str]) -> None:
        """Move the live pointer. Redis keeps the published copies of exactly the live
        version and its history (what a rollback can reach), so they stay bounded."""
        live = self.live_id()
        published = {*self.history(), *([live] if live else [])}
        history = history[-HISTORY_KEPT:]
        self.publish(version_id)  # before the pointer moves: a reader must find it
        self.store.set_meta(HISTORY_KEY, json.dumps(history).encode())
        self.store.set_meta(LIVE_KEY, version_id.encode())
        gone = sorted(published - {*history, version_id})
        self.store.delete_meta(*(f"{kind}{v}" for v in gone for kind in PUBLISHED))
        self.root.mkdir(parents=True, exist_ok=True)
        mirror = {"live": version_id, "history": history, "updated": time.time()}
        tmp = self.root / f".{MIRROR}.tmp"
        tmp.write_text(json.dumps(mirror, indent=2))
        os.replace(tmp, self.root / MIRROR)

    def promote(self, version_id: str) -> ModelVersion | None:
        """Make a version live for every worker; returns its record (None for generic).

        The version is loaded (and its sha256 checked) first, so a bad one never goes live.
        """
        new = self.load(version_id)
        current_id = self.live_id() or self.shipped_id()
        if current_id == version_id:
            raise RegistryError(f"model version {version_id} is already live")
        try:
            current = self.load(current_id)
        except RegistryError:
            current = None  # a broken live version must not block promoting a good one
        if current is not None and _state_shape(new) != _state_shape(current):
            raise RegistryError(
                f"model version {version_id} needs per-stream states of shape "
                f"{_state_shape(new)} but the live {current_id} uses {_state_shape(current)}; "
                "train it with the live model's kind, hidden size and max_features"
            )
        self._set_live(version_id, [*self.history(), current_id])
        self._set_status(current_id, "retired")
        self._set_status(version_id, "promoted")
        return None if version_id == self.shipped_id() else self.get(version_id)

    def rollback(self) -> str:
        """Go back to the previously live version; returns its id."""
        history = self.history()
        current_id = self.live_id() or self.shipped_id()
        if not history:
            raise RegistryError(f"nothing to roll back to: {current_id} has no predecessor")
        previous = history[-1]
        self.load(previous)  # refuse to roll back onto weights that no longer verify
        self._set_live(previous, history[:-1])
        self._set_status(current_id, "rolled-back")
        self._set_status(previous, "promoted")
        return previous
