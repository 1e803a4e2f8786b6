"""The FastAPI application: routers, error shapes, and the dashboard's static files.

Auth covers every data and ops route except /healthz. The dashboard's files (`/`,
`/static/...`) and the OpenAPI docs are public: they hold no data, and a browser cannot
attach a bearer token to a page load; the page asks for the token and sends it on every
API call it makes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from pipeline.api import (
    routes_admin,
    routes_alerts,
    routes_episodes,
    routes_incidents,
    routes_ops,
    routes_streams,
)
from pipeline.api.deps import ApiContext
from pipeline.api.live_feed import close_live_feed
from pipeline.settings import Settings
from pipeline.state.base import StoreUnavailable
from pipeline.state.redis import connect_redis

STATIC = Path(__file__).parent / "static"


def _validation_message(exc: RequestValidationError) -> str:
    """One line naming the first bad parameter, e.g. "query parameter 'limit': ..."."""
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ())]
    where = f"{loc[0]} parameter {'.'.join(loc[1:])!r}" if len(loc) > 1 else "request"
    return f"{where}: {err.get('msg', 'invalid value')}"


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": _validation_message(exc), "errors": errors}, status_code=422)


async def _on_redis_down(request: Request, exc: Exception) -> JSONResponse:
    first = str(exc).strip().splitlines()
    reason = first[0][:200] if first else type(exc).__name__
    reason = reason.removeprefix("Redis unavailable: ")  # StoreUnavailable says it already
    return JSONResponse({"detail": f"Redis unavailable: {reason}"}, status_code=503)


def create_app(settings: Settings) -> FastAPI:
    """Build the API for these settings (raises SettingsError if Redis is not configured)."""
    context = ApiContext(settings=settings, redis=connect_redis(settings.redis_address()))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await close_live_feed(app)
        context.redis.close()

    app = FastAPI(
        title="Vigil",
        summary="Streaming anomaly detection: streams, scores, alerts, models.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.context = context
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(redis.exceptions.ConnectionError, _on_redis_down)
    app.add_exception_handler(redis.exceptions.TimeoutError, _on_redis_down)
    app.add_exception_handler(StoreUnavailable, _on_redis_down)
    app.include_router(routes_ops.public)
    app.include_router(routes_ops.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_streams.router)
    app.include_router(routes_alerts.router)
    app.include_router(routes_episodes.router)
    app.include_router(routes_incidents.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
