"""Operations: liveness, readiness, Prometheus metrics and model versions."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from kafka import KafkaAdminClient

from pipeline.api.deps import ERRORS, ApiContext, Authorized, Context
from pipeline.api.lag import committed_lag, render_lag
from pipeline.api.metrics import collect_metrics
from pipeline.api.model_info import model_versions
from pipeline.api.schemas import ModelsView, Readiness

public = APIRouter(tags=["ops"])
router = APIRouter(tags=["ops"], dependencies=Authorized, responses=ERRORS)

BROKER_TIMEOUT_S = 3.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


@public.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (no dependency checked: a Redis outage must not restart the API)."""
    return {"status": "ok"}


def _check_redis(context: ApiContext) -> str:
    try:
        context.redis.ping()
    except Exception as exc:
        return _first_line(exc)
    return "ok"


def _check_broker(context: ApiContext) -> str:
    settings = context.settings
    timeout_ms = int(BROKER_TIMEOUT_S * 1000)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap(),
            client_id="vigil-api-readyz",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
            **settings.kafka_security(),
        )
        admin.close()
    except Exception as exc:
        return _first_line(exc)
    return "ok"


def _check_model(context: ApiContext) -> str:
    try:
        context.layout()
    except Exception as exc:
        return _first_line(exc)
    return "ok"


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(context: Context) -> JSONResponse:
    """Ready when Redis answers and the model loads. The broker is checked and reported
    but does not decide: the API serves everything from Redis, so a Kafka outage must not
    take it out of its Service (Kubernetes' readiness probe calls this)."""
    checks = {
        "redis": await run_in_threadpool(_check_redis, context),
        "broker": await run_in_threadpool(_check_broker, context),
        "model": await run_in_threadpool(_check_model, context),
    }
    ready = checks["redis"] == checks["model"] == "ok"
    body = Readiness(ready=ready, checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(context: Context) -> PlainTextResponse:
    """Prometheus text format: worker counters (summed over workers), streams, alerts."""
    settings = context.settings
    text = collect_metrics(context.redis, settings.redis_prefix)
    text += render_lag(committed_lag(settings), settings.group_id)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/models", response_model=ModelsView)
def models(context: Context) -> ModelsView:
    """Model versions and which one is live."""
    return model_versions(context)
