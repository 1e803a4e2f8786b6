"""/alerts: the recent alerts Redis keeps, and a live feed of new ones (Server-Sent Events).

The feed (`pipeline.api.live_feed`) follows the workers' alerts stream with one reader per
process and tags every event with its Redis stream id: a browser that reconnects sends it
back as Last-Event-ID and misses nothing that Redis still keeps.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from pipeline.api.deps import ERRORS, Authorized, Context
from pipeline.api.live_feed import FeedFull, live_feed, sse_stream
from pipeline.api.reads import alert_matches, alerts_newest_first
from pipeline.api.schemas_alerts import AlertBody, AlertList
from pipeline.state.base import alerts_key

router = APIRouter(tags=["alerts"], dependencies=Authorized, responses=ERRORS)

_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")


@router.get("/alerts", response_model=AlertList)
def recent_alerts(
    context: Context,
    stream: Annotated[str | None, Query(max_length=200, description="only this stream")] = None,
    min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    since: Annotated[
        datetime | None,
        Query(description="only alerts whose event time is at or after this (ISO 8601)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        str | None,
        Query(pattern=r"^\d{1,20}-\d{1,20}$", description="cursor: only alerts older than this"),
    ] = None,
) -> AlertList:
    """Recent alerts, newest first (Redis keeps the last ~10,000; the topic has them all).
    Page with `before=next_cursor`."""
    since_ms = None if since is None else int(since.timestamp() * 1000)
    key = alerts_key(context.settings.redis_prefix)
    wanted = (
        a
        for a in alerts_newest_first(context.redis, key, before)
        if (since_ms is None or int(a.get("ts_ms", 0)) >= since_ms)
        and alert_matches(a, stream, min_score)
    )
    items = [AlertBody.model_validate(a) for a in itertools.islice(wanted, limit)]
    next_cursor = items[-1].cursor if len(items) == limit else None
    return AlertList(items=items, count=len(items), next_cursor=next_cursor)


@router.get(
    "/alerts/live",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "alert events"},
        503: {"description": "the process already serves live_max_clients feed clients"},
    },
)
async def live_alerts(
    request: Request,
    context: Context,
    stream: Annotated[str | None, Query(max_length=200)] = None,
    min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    last_event_id: Annotated[str | None, Header(description="resume after this id")] = None,
) -> StreamingResponse:
    """New alerts as Server-Sent Events (`event: alert`, `data:` the alert JSON), with a
    `: ping` comment every `live_ping_seconds` when there is nothing to send."""
    if last_event_id is not None and not _ENTRY_ID.fullmatch(last_event_id):
        raise HTTPException(422, "Last-Event-ID must be a Redis stream id like 1700000000000-0")
    settings = context.settings
    feed = live_feed(request.app, settings)
    try:
        client = feed.subscribe()
    except FeedFull as exc:
        raise HTTPException(503, f"{exc}; try again later", headers={"Retry-After": "30"}) from None
    events = sse_stream(feed, client, last_event_id, stream, min_score, settings.live_ping_seconds)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)
