"""Typed bodies of alerts, episodes, labels and silences (the contract in
`pipeline.contracts.alerts` and `pipeline.contracts.episodes`, as the OpenAPI docs show it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class EpisodeBody(BaseModel):
    id: str = Field(description="episode id: every alert of one incident carries it")
    start_ms: int
    peak: float
    duration_s: float


class FeatureReasonBody(BaseModel):
    name: str
    value: float | None
    expected: float | None
    lower: float | None = Field(description="lower edge of the usual band")
    upper: float | None
    share: float | None = Field(description="the feature's part of the deviation, 0-1")


class ReasonBody(BaseModel):
    fired: str = Field(description="the strongest evidence source, kind or kind@scale")
    evidence: dict[str, float] = Field(description="every evidence source's score")
    features: list[FeatureReasonBody] = Field(description="largest share first")
    text: str = Field(description="one sentence for a person")


class AlertBody(BaseModel):
    id: str
    stream: str
    ts: str
    ts_ms: int
    score: float
    value: float | None = None
    values: dict[str, float | None]
    expected: dict[str, float | None]
    top_feature: str
    model_version: str
    detector: str
    meta: dict[str, Any]
    partition: int
    offset: int
    state: Literal["firing", "resolved"] = "firing"
    action: Literal["open", "escalate", "resolve"] = "open"
    episode: EpisodeBody | None = None
    reason: ReasonBody | None = None
    cursor: str = Field(description="the Redis stream id; page with before=<cursor>")


class AlertList(BaseModel):
    items: list[AlertBody] = Field(description="newest first")
    count: int
    next_cursor: str | None = Field(
        default=None, description="pass as `before` for the next (older) page; null at the end"
    )


class LabelBody(BaseModel):
    episode: str
    stream: str
    start_ms: int
    peak: float
    acknowledged_by: str | None
    acknowledged_ms: int | None
    false_positive: bool | None = Field(description="null: nobody said")
    note: str
    updated_ms: int


class EpisodeSummary(BaseModel):
    id: str
    stream: str
    state: Literal["firing", "resolved"]
    start_ms: int
    last_ts_ms: int = Field(description="event time of the episode's latest alert")
    peak: float
    duration_s: float
    alerts: int = Field(description="alerts of the episode Redis still keeps")
    reason: str = Field(description="the latest firing alert's sentence")
    meta: dict[str, Any] = Field(description="the event meta of the latest firing alert")
    label: LabelBody | None


class EpisodeList(BaseModel):
    items: list[EpisodeSummary] = Field(description="latest alert first")
    count: int


class AckRequest(BaseModel):
    by: str = Field(default="", max_length=100, description="who acknowledges")
    note: str = Field(default="", max_length=2000)


class FalsePositiveRequest(BaseModel):
    false_positive: bool = Field(default=True, description="false: it was a real incident")
    note: str = Field(default="", max_length=2000)
    by: str = Field(default="", max_length=100)


class SilenceRequest(BaseModel):
    kind: Literal["stream", "pattern"] = Field(
        description="stream: one stream id exactly; pattern: a glob of stream ids, e.g. card-*"
    )
    value: str = Field(min_length=1, max_length=200)
    duration_s: float = Field(gt=0, le=30 * 86400)
    note: str = Field(default="", max_length=2000)
    by: str = Field(default="", max_length=100)


class SilenceBody(BaseModel):
    id: str
    stream: str | None
    pattern: str | None
    until_ms: int
    created_ms: int
    created_by: str
    note: str


class SilenceList(BaseModel):
    items: list[SilenceBody]
