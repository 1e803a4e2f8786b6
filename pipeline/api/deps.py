"""What every route needs, as FastAPI `Annotated` dependencies: the context and auth.

The context is built once per app (in `create_app`) and kept on `app.state`, so routes
never read settings from the environment and tests can build as many apps as they like.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Annotated, Any

import redis
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from detectors.forecaster import LoadedModel
from detectors.state import StateLayout
from pipeline.api.schemas import ErrorBody, ValidationErrorBody
from pipeline.models.serving import build_detector, load_shipped_model
from pipeline.settings import Settings


@dataclass
class ApiContext:
    """Settings plus the one Redis client the API shares between requests.

    The model and its state layout load lazily: /healthz must answer even when the model
    file is missing, and /readyz reports that instead of the app failing to start.
    """

    settings: Settings
    redis: redis.Redis
    _model: LoadedModel | None = field(default=None, repr=False)
    _layout: StateLayout | None = field(default=None, repr=False)

    def model(self) -> LoadedModel:
        if self._model is None:
            self._model = load_shipped_model(self.settings)
        return self._model

    def layout(self) -> StateLayout:
        if self._layout is None:
            self._layout = build_detector(self.settings, self.model()).layout
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
