"""Response bodies: what the OpenAPI docs show and what the dashboard reads."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

StreamStatus = Literal["alerting", "normal", "warming"]


class StreamSummary(BaseModel):
    stream: str
    score: float = Field(description="latest anomaly score in [0, 1]")
    status: StreamStatus | Literal["unknown"] = Field(
        description="warming = not past warmup yet; unknown = state unreadable by this model"
    )
    count: int = Field(description="events applied to the stream")
    last_ts_ms: int | None = Field(description="event time of the last applied event")


class StreamPage(BaseModel):
    items: list[StreamSummary]
    offset: int
    limit: int
    total: int | None = Field(description="matching streams; null when filtered by status")
    next_offset: int | None = Field(description="offset of the next page; null on the last")
    next_cursor: str | None = Field(
        default=None, description="with cursor paging: the next page's cursor; null on the last"
    )


class Point(BaseModel):
    ts_ms: int
    values: dict[str, float | None]
    expected: dict[str, float | None]
    lower: dict[str, float | None]
    upper: dict[str, float | None]
    score: float
    alert: bool


class BandInfo(BaseModel):
    k: float
    window: int
    method: str


class StreamDetail(BaseModel):
    stream: str
    status: StreamStatus | Literal["unknown"]
    score: float | None
    count: int
    last_ts_ms: int | None
    features: list[str]
    band: BandInfo
    points: list[Point] = Field(description="recent history, oldest first")
    threshold: float = Field(description="the score at which an episode opens")
    alerts: list[dict[str, Any]] = Field(description="recent alerts of the stream, newest first")


class ModelVersion(BaseModel):
    version: str
    source: str = Field(description="where this version comes from (shipped, registry, ...)")
    live: bool
    kind: str | None = None
    hidden_size: int | None = None
    sha256: str | None = None


class ModelsView(BaseModel):
    live: str | None = Field(description="the version workers are told to serve, if set")
    serving: str = Field(description="the version this API decodes states with")
    versions: list[ModelVersion]


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str] = Field(description="'ok' or the reason the dependency is not")


class ErrorBody(BaseModel):
    detail: str = Field(description="one line saying what is wrong")


class ValidationErrorBody(BaseModel):
    detail: str = Field(description="one line naming the first bad parameter")
    errors: list[dict[str, Any]] = Field(default_factory=list)
