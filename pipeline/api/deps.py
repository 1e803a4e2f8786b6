"""What every route needs, as FastAPI `Annotated` dependencies: the context and auth.

The context is built once per app (in `create_app`) and kept on `app.state`, so routes
never read settings from the environment and tests can build as many apps as they like.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Annotated, Any

import redis
from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from detectors.forecaster import LoadedModel
from detectors.state import StateLayout
from pipeline.api.schemas import ErrorBody, ValidationErrorBody
from pipeline.contracts.ids import STREAM_ID_PATTERN, STREAM_MAX_CHARS
from pipeline.models.registry import ModelRegistry
from pipeline.models.serving import build_detector
from pipeline.settings import Settings
from pipeline.state.redis import RedisStateStore
from pipeline.worker.model_watch import ModelWatcher


@dataclass
class ApiContext:
    """Settings plus the one Redis client the API shares between requests.

    States are decoded with the model the workers serve: the registry's live version,
    followed by the workers' own `ModelWatcher` (re-checked every `model_poll_seconds`,
    and a version the workers would refuse is refused here too). It loads lazily:
    /healthz must answer even when no model loads, and /readyz reports that instead of
    the app failing to start.
    """

    settings: Settings
    redis: redis.Redis
    _registry: ModelRegistry | None = field(default=None, repr=False)
    _watcher: ModelWatcher | None = field(default=None, repr=False)
    _layout: StateLayout | None = field(default=None, repr=False)

    def registry(self) -> ModelRegistry:
        if self._registry is None:
            store = RedisStateStore(self.redis, self.settings.redis_prefix)
            self._registry = ModelRegistry(self.settings, store)
        return self._registry

    def model(self) -> LoadedModel:
        """The live model; RegistryError when it does not load (/readyz says why)."""
        if self._watcher is None:
            self._watcher = ModelWatcher(self.registry(), self.settings.model_poll_seconds)
        elif self._watcher.poll() is not None:
            self._layout = None
        return self._watcher.current

    def layout(self) -> StateLayout:
        model = self.model()
        if self._layout is None:
            self._layout = build_detector(self.settings, model).layout
        return self._layout


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]

_bearer = HTTPBearer(
    auto_error=False, description="api_token (all) or api_viewer_token (reads only)"
)


def _check(credentials: HTTPAuthorizationCredentials | None, accepted: list[str]) -> None:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = credentials.credentials.encode()
    # compare_digest: the time taken must not tell how much of a guess was right.
    if not any(secrets.compare_digest(given, token.encode()) for token in accepted):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_token(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Reads: the admin token (`api_token`) or the viewer token (`api_viewer_token`), when
    a token is configured at all."""
    admin = context.settings.api_token.get_secret_value()
    if not admin:
        return
    viewer = context.settings.api_viewer_token.get_secret_value()
    _check(credentials, [admin, viewer] if viewer else [admin])


def require_admin(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Writes (acknowledge, label, silence): only the admin token."""
    admin = context.settings.api_token.get_secret_value()
    if admin:
        _check(credentials, [admin])


StreamIdPath = Annotated[
    str,
    Path(
        description="the stream id (the Kafka record key): 1-200 characters, no control "
        "characters (`pipeline.contracts.ids`)",
        min_length=1,
        max_length=STREAM_MAX_CHARS,
        pattern=STREAM_ID_PATTERN,
    ),
]
"""A stream id in a path, with the id rule in the schema, so clients see it documented."""

Authorized = [Depends(require_token)]
"""Router-level dependency list: every route of the router needs a read token."""

AdminOnly = [Depends(require_admin)]
"""Route-level dependency list for writes."""

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or wrong bearer token"},
    422: {"model": ValidationErrorBody, "description": "a parameter or the body is invalid"},
    503: {"model": ErrorBody, "description": "Redis is unavailable"},
}
"""The error responses every token-protected route documents."""
