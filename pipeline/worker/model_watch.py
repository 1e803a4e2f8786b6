"""Workers notice a newly promoted (or rolled-back) model at a batch boundary.

`ModelWatcher.poll` is called before every batch, so it must be cheap: it reads the live
pointer from Redis at most every `model_poll_seconds` and does nothing else unless the
pointer moved. A version that fails to verify or load is logged once and remembered, so
a bad promotion costs one error line, not one per batch; the worker keeps serving the
model it has. Swapping at a batch boundary is what keeps "nothing lost, nothing applied
twice": a batch is scored, saved and committed entirely by one model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from detectors.forecaster import LoadedModel
from pipeline.models.registry import ModelRegistry, RegistryError
from pipeline.state.base import StoreUnavailable

log = logging.getLogger(__name__)


class ModelWatcher:
    """Tells the worker when the live model version changed, with the model loaded."""

    def __init__(
        self,
        registry: ModelRegistry,
        poll_seconds: float,
        current: LoadedModel | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.poll_seconds = poll_seconds  # settings.model_poll_seconds
        self.clock = clock
        self.current = current if current is not None else registry.live_model()
        self.refused: set[str] = set()
        self._next_check = clock() + poll_seconds

    @property
    def version(self) -> str:
        return self.current.version

    def poll(self) -> LoadedModel | None:
        """The new live model if it changed since the last call, else None."""
        now = self.clock()
        if now < self._next_check:
            return None
        self._next_check = now + self.poll_seconds
        try:
            wanted = self.registry.live_id() or self.registry.shipped_id()
        except StoreUnavailable as exc:
            log.warning("cannot read the live model version (%s); keeping %s", exc, self.version)
            return None
        if wanted == self.current.version or wanted in self.refused:
            return None
        try:
            loaded = self.registry.load(wanted)
        except RegistryError as exc:
            self.refused.add(wanted)
            log.error("%s; keeping model %s", exc, self.version)
            return None
        if loaded.config.record_shape != self.current.config.record_shape:
            self.refused.add(wanted)
            log.error(
                "model version %s has another per-stream state shape; keeping model %s",
                wanted,
                self.version,
            )
            return None
        log.info("switching model %s -> %s", self.version, wanted)
        self.current = loaded
        return loaded
