"""/alerts: the recent alerts Redis keeps, and a live feed of new ones (Server-Sent Events).

The feed follows the workers' alerts stream with XREAD BLOCK on its own connection, and
tags every event with its Redis stream id: a browser that reconnects sends it back as
Last-Event-ID and misses nothing that Redis still keeps.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, cast

import redis.asyncio as aioredis
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from pipeline.api.deps import ERRORS, Authorized, Context
from pipeline.api.reads import AlertRow, alerts_newest_first, decode_alert
from pipeline.api.schemas_alerts import AlertBody, AlertList
from pipeline.state.base import alerts_key

router = APIRouter(tags=["alerts"], dependencies=Authorized, responses=ERRORS)

BLOCK_MS = 5000
_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")


def _matches(body: dict[str, Any], stream: str | None, min_score: float | None) -> bool:
    if stream is not None and body.get("stream") != stream:
        return False
    return min_score is None or float(body.get("score", 0.0)) >= min_score


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
        and _matches(a, stream, min_score)
    )
    items = [AlertBody.model_validate(a) for a in itertools.islice(wanted, limit)]
    next_cursor = items[-1].cursor if len(items) == limit else None
    return AlertList(items=items, count=len(items), next_cursor=next_cursor)


async def _follow(
    request: Request, url: str, key: str, start: str | None, stream: str | None,
    min_score: float | None,
) -> AsyncIterator[bytes]:  # fmt: skip
    client = aioredis.Redis.from_url(url, decode_responses=False, socket_connect_timeout=3.0)
    try:
        if start is None:
            # Resolve "now" to an explicit id once: re-reading from "$" each round would
            # drop alerts added between two XREADs.
            last = cast("list[AlertRow]", await client.xrevrange(key, count=1))
            start = last[0][0].decode() if last else "0-0"
        yield b"retry: 3000\n: connected\n\n"
        while not await request.is_disconnected():
            reply = await client.xread({key: start}, count=100, block=BLOCK_MS)
            rows = cast("list[tuple[bytes, list[AlertRow]]]", reply or [])
            if not rows:
                yield b": keepalive\n\n"
                continue
            for entry_id, fields in rows[0][1]:
                body = decode_alert(entry_id, fields)
                start = body["cursor"]
                if _matches(body, stream, min_score):
                    data = json.dumps(body, separators=(",", ":"))
                    yield f"id: {start}\nevent: alert\ndata: {data}\n\n".encode()
    finally:
        await client.aclose()


@router.get(
    "/alerts/live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "alert events"}},
)
async def live_alerts(
    request: Request,
    context: Context,
    stream: Annotated[str | None, Query(max_length=200)] = None,
    min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    last_event_id: Annotated[str | None, Header(description="resume after this id")] = None,
) -> StreamingResponse:
    """New alerts as Server-Sent Events (`event: alert`, `data:` the alert JSON)."""
    if last_event_id is not None and not _ENTRY_ID.fullmatch(last_event_id):
        raise HTTPException(422, "Last-Event-ID must be a Redis stream id like 1700000000000-0")
    settings = context.settings
    feed = _follow(request, settings.redis_address(), alerts_key(settings.redis_prefix),
                   last_event_id, stream, min_score)  # fmt: skip
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(feed, media_type="text/event-stream", headers=headers)
