"""Which model a worker serves, and building the detector from settings.

Until a model has been trained and promoted, every install serves the generic model that
ships inside the `detectors` package (trained by `detectors.training.train.train_generic` on
synthetic series), so a fresh machine scores streams at once.
"""

from __future__ import annotations

from detectors.detector import DetectorParams, RecurrentDetector
from detectors.forecaster import LoadedModel, load_checkpoint, shipped_model_path
from detectors.policy import AlertPolicy
from detectors.scoring import NoveltyParams
from pipeline.settings import Settings, SettingsError


def load_shipped_model(settings: Settings) -> LoadedModel:
    path = shipped_model_path(settings.model_kind, settings.hidden_size)
    if not path.exists():
        raise SettingsError(
            f"no shipped {settings.model_kind} model with hidden size {settings.hidden_size}: "
            "use hidden_size 64 or train one with `vigil train`"
        )
    data = path.read_bytes()
    loaded = load_checkpoint(data)
    version = f"generic-{settings.model_kind}-h{settings.hidden_size}-{loaded.sha256[:8]}"
    return LoadedModel(model=loaded.model, version=version, sha256=loaded.sha256)


def detector_params(settings: Settings) -> DetectorParams:
    return DetectorParams(
        novelty=NoveltyParams(enabled=settings.range_channel),
        policy=AlertPolicy(
            threshold=settings.alert_threshold,
            clear=settings.alert_clear,
            quiet_seconds=settings.alert_quiet_seconds,
        ),
        warmup=settings.warmup_events,
    )


def build_detector(settings: Settings, loaded: LoadedModel | None = None) -> RecurrentDetector:
    model = loaded if loaded is not None else load_shipped_model(settings)
    return RecurrentDetector(model, detector_params(settings), device=settings.device)
