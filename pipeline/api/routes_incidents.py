"""/incidents/ranking and /incidents/lanes: find streams by how anomalous they were in a
time range, not only by how they look now (`pipeline.state.peaks`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from pipeline.api.deps import ERRORS, ApiContext, Authorized, Context
from pipeline.state.peaks import MAX_BUCKETS, buckets_in, lane_peaks, ranked_peaks

router = APIRouter(tags=["incidents"], dependencies=Authorized, responses=ERRORS)

EpochMs = Annotated[int, Query(ge=0, le=2**53, description="epoch milliseconds (event time)")]


class RankedStream(BaseModel):
    stream: str
    peak: float = Field(description="largest score in the range (kept from alert_clear up)")


class Ranking(BaseModel):
    from_ms: int
    to_ms: int
    bucket_ms: int
    items: list[RankedStream]


class Lane(BaseModel):
    stream: str
    peak: float
    peaks: list[float | None] = Field(description="per bucket; null = below alert_clear")


class Lanes(BaseModel):
    from_ms: int
    to_ms: int
    bucket_ms: int
    buckets: list[int] = Field(description="bucket start times (epoch ms)")
    lanes: list[Lane]


def _buckets(context: ApiContext, from_ms: int, to_ms: int) -> tuple[int, list[int]]:
    """The buckets of [from_ms, to_ms]: none when from_ms is after to_ms, and only the
    latest MAX_BUCKETS of a longer range (each bucket is one Redis key to read)."""
    bucket_ms = context.settings.peak_bucket_seconds * 1000
    if from_ms > to_ms:
        return bucket_ms, []
    from_ms = max(from_ms, to_ms - (MAX_BUCKETS - 1) * bucket_ms)
    return bucket_ms, buckets_in(from_ms, to_ms, bucket_ms)


@router.get("/incidents/ranking", response_model=Ranking)
def ranking(
    context: Context,
    from_ms: EpochMs,
    to_ms: EpochMs,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Ranking:
    """Streams ranked by their largest score between from_ms and to_ms (whole buckets; at
    most the latest 2000 of them)."""
    bucket_ms, buckets = _buckets(context, from_ms, to_ms)
    rows = ranked_peaks(context.redis, context.settings.redis_prefix, buckets, limit)
    items = [RankedStream(stream=s, peak=p) for s, p in rows]
    return Ranking(from_ms=from_ms, to_ms=to_ms, bucket_ms=bucket_ms, items=items)


@router.get("/incidents/lanes", response_model=Lanes)
def lanes(
    context: Context,
    from_ms: EpochMs,
    to_ms: EpochMs,
    limit: Annotated[int, Query(ge=1, le=200, description="streams (top by peak)")] = 30,
) -> Lanes:
    """Swim lanes: the top streams of the range x its buckets, each cell the peak score."""
    bucket_ms, buckets = _buckets(context, from_ms, to_ms)
    prefix = context.settings.redis_prefix
    top = ranked_peaks(context.redis, prefix, buckets, limit)
    cells = lane_peaks(context.redis, prefix, buckets, [s for s, _ in top])
    rows = [Lane(stream=s, peak=p, peaks=c) for (s, p), c in zip(top, cells, strict=True)]
    return Lanes(from_ms=from_ms, to_ms=to_ms, bucket_ms=bucket_ms, buckets=buckets, lanes=rows)
