"""/streams: the streams most anomalous first, and one stream's recent history.

The order comes from the scores sorted set the workers keep (latest score per stream);
a stream's status comes from its state record: `warming` until it has seen more than
`warmup_events` events, then `alerting` while its alert flag is set, else `normal`.
Pages are taken from a live ranking, so a stream whose score changes between two
requests can move between pages: a dashboard view, not a snapshot.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, cast

import numpy as np
from fastapi import APIRouter, HTTPException, Query

from detectors.state import FLAG_IN_ALERT, StateFormatError
from pipeline.api.band import BAND_K, BAND_WINDOW, expected_band
from pipeline.api.deps import ERRORS, ApiContext, Authorized, Context, StreamIdPath
from pipeline.api.reads import SCAN_CHUNK, alerts_newest_first, get_many, ranked
from pipeline.api.schemas import (
    BandInfo,
    ErrorBody,
    Point,
    StreamDetail,
    StreamPage,
    StreamStatus,
    StreamSummary,
)
from pipeline.contracts.history import HistoryEntry, parse_history
from pipeline.state.base import (
    alerts_key,
    history_key,
    scores_key,
    snapshot_key,
    state_key,
    validate_stream,
)
from pipeline.state.reset import is_reset_marker

router = APIRouter(tags=["streams"], dependencies=Authorized, responses=ERRORS)

ALERTS_PER_STREAM = 50
_GLOB = re.compile(r"([*?\[\]\\])")


def _summaries(context: ApiContext, rows: list[tuple[bytes, float]]) -> list[StreamSummary]:
    """Join ranked (stream, score) pairs with their state records (one MGET)."""
    streams = [raw.decode("utf-8", "surrogatepass") for raw, _ in rows]
    prefix = context.settings.redis_prefix
    blobs = get_many(context.redis, [state_key(prefix, s) for s in streams])
    out = []
    for stream, (_, score), blob in zip(streams, rows, blobs, strict=True):
        status, count, last_ts = _state_fields(context, blob)
        out.append(
            StreamSummary(stream=stream, score=score, status=status, count=count,
                          last_ts_ms=last_ts)
        )  # fmt: skip
    return out


def _state_fields(context: ApiContext, blob: bytes | None) -> tuple[Any, int, int | None]:
    """(status, count, last_ts_ms) of one stored state; decoded one by one so a record
    from another model's layout marks only its own stream `unknown`."""
    if blob is None or is_reset_marker(blob):
        return "warming", 0, None
    try:
        states, _ = context.layout().decode([blob])
    except StateFormatError:
        return "unknown", 0, None
    state = states[0]
    count = int(state["count"])
    status: StreamStatus
    if count <= context.settings.warmup_events:
        status = "warming"
    elif int(state["flags"]) & FLAG_IN_ALERT:
        status = "alerting"
    else:
        status = "normal"
    return status, count, int(state["last_ts"])


SNAPSHOT_TTL_S = 300


def _snapshot(context: ApiContext, cursor: str) -> tuple[str, int]:
    """(ranking key, offset) of a cursor: "start" copies the live ranking to a snapshot that
    lives SNAPSHOT_TTL_S after its last page, so its pages neither repeat nor skip a
    stream however scores move meanwhile; "<snapshot>:<offset>" continues one."""
    prefix = context.settings.redis_prefix
    if cursor == "start":
        snap = uuid.uuid4().hex
        # COPY then EXPIRE; an empty ranking copies nothing, and has no second page
        context.redis.copy(scores_key(prefix), snapshot_key(prefix, snap))
        context.redis.expire(snapshot_key(prefix, snap), SNAPSHOT_TTL_S)
        return snap, 0
    snap, _, offset = cursor.partition(":")
    if not context.redis.expire(snapshot_key(prefix, snap), SNAPSHOT_TTL_S):
        raise HTTPException(
            404,
            "no such cursor (a snapshot expires 5 min after its last page); "
            "start again with cursor=start",
        )
    return snap, int(offset)


def _search(
    context: ApiContext, q: str, low: float | str, high: float | str, limit: int
) -> StreamPage:
    """Streams whose id contains q (case-sensitive), highest latest score first."""
    pattern = "*" + _GLOB.sub(r"\\\1", q) + "*"
    lo = float("-inf") if low == "-inf" else float(low)
    hi = float("inf") if high == "+inf" else float(high)
    found = [(m, sc) for m, sc in cast("Iterator[tuple[bytes, float]]",
             context.redis.zscan_iter(scores_key(context.settings.redis_prefix), match=pattern,
                                      count=SCAN_CHUNK)) if lo <= sc <= hi]  # fmt: skip
    found.sort(key=lambda p: (-p[1], p[0]))
    items = _summaries(context, found[:limit])
    return StreamPage(items=items, offset=0, limit=limit, total=len(found), next_offset=None)


@router.get(
    "/streams", response_model=StreamPage,
    responses={404: {"model": ErrorBody, "description": "the cursor's snapshot expired"}},
)  # fmt: skip
def list_streams(
    context: Context,
    status: Annotated[StreamStatus | None, Query(description="only streams in this status")] = None,
    min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    max_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    q: Annotated[str | None, Query(min_length=1, max_length=200, description="id contains")] = None,
    cursor: Annotated[
        str | None,
        Query(
            pattern=r"^(start|[0-9a-f]{32}:\d{1,9})$",
            description="page a snapshot: 'start', then each page's next_cursor",
        ),
    ] = None,
) -> StreamPage:
    """Streams by latest score, highest first; filter by status, score range or id.

    With `offset` the pages come from the live ranking (a dashboard view: a stream whose
    score changes may move between pages); with `cursor` from a snapshot taken at
    cursor=start, so paging never repeats or skips a stream."""
    if min_score is not None and max_score is not None and min_score > max_score:
        return StreamPage(items=[], offset=offset, limit=limit, total=0, next_offset=None)
    low: float | str = "-inf" if min_score is None else min_score
    high: float | str = "+inf" if max_score is None else max_score
    if q is not None:
        return _search(context, q, low, high, limit)
    key = scores_key(context.settings.redis_prefix)
    snap = None
    if cursor is not None:
        snap, offset = _snapshot(context, cursor)
        key = snapshot_key(context.settings.redis_prefix, snap)
    page = _page(context, key, status, low, high, offset, limit)
    if snap is not None and page.next_offset is not None:
        page.next_cursor = f"{snap}:{page.next_offset}"
    return page


def _page(
    context: ApiContext, key: str, status: StreamStatus | None, low: float | str,
    high: float | str, offset: int, limit: int,
) -> StreamPage:  # fmt: skip
    if status is None:
        total = int(context.redis.zcount(key, low, high))
        items = _summaries(context, ranked(context.redis, key, high, low, offset, limit))
        more = offset + len(items) < total
        return StreamPage(items=items, offset=offset, limit=limit, total=total,
                          next_offset=offset + len(items) if more else None)  # fmt: skip

    # A status lives in the state record, not the ranking: walk the ranking in chunks.
    items, skipped, position, exhausted = [], 0, 0, False
    while len(items) < limit:
        rows = ranked(context.redis, key, high, low, position, SCAN_CHUNK)
        position += len(rows)
        exhausted = len(rows) < SCAN_CHUNK
        for summary in _summaries(context, rows):
            if summary.status != status:
                continue
            if skipped < offset:
                skipped += 1
            elif len(items) < limit:
                items.append(summary)
        if exhausted:
            break
    full = len(items) == limit
    return StreamPage(items=items, offset=offset, limit=limit, total=None,
                      next_offset=offset + limit if full else None)  # fmt: skip


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None


def _points(entries: list[HistoryEntry], features: list[str], keep: int) -> list[Point]:
    """The last `keep` entries with a band per feature (computed over all entries).

    A stream's very first event has no expectation (the detector stores 0): shown as
    none, not as a drop to zero that squashes the chart. A feature that has never been
    negative gets no band below zero (amounts, counts, latencies)."""
    bands = {}
    for f in features:
        values = np.array([e.values.get(f, np.nan) for e in entries], dtype=np.float64)
        expected = np.array([e.expected.get(f, np.nan) for e in entries], dtype=np.float64)
        lower, upper = expected_band(values, expected)
        if np.nanmin(values, initial=np.inf) >= 0:
            lower = np.maximum(lower, 0.0)
        bands[f] = (lower, upper)
    start = max(0, len(entries) - keep)
    points = []
    for i in range(start, len(entries)):
        e = entries[i]
        first = i == 0 and all(v == 0.0 for v in e.expected.values())
        points.append(
            Point(
                ts_ms=e.ts_ms,
                values={f: _finite(v) for f, v in e.values.items()},
                expected={f: None if first else _finite(v) for f, v in e.expected.items()},
                lower={f: _finite(float(bands[f][0][i])) for f in features},
                upper={f: _finite(float(bands[f][1][i])) for f in features},
                score=e.score,
                alert=e.alert,
            )
        )
    return points


def _stream_alerts(context: ApiContext, stream: str, limit: int) -> list[dict[str, Any]]:
    """The stream's alerts among those Redis keeps, newest first."""
    key = alerts_key(context.settings.redis_prefix)
    mine = (a for a in alerts_newest_first(context.redis, key) if a.get("stream") == stream)
    return list(itertools.islice(mine, limit))


@router.get(
    "/streams/{stream_id:path}", response_model=StreamDetail,
    responses={404: {"model": ErrorBody, "description": "no state or history for the stream"}},
)  # fmt: skip
def stream_detail(
    context: Context,
    stream_id: StreamIdPath,
    points: Annotated[int, Query(ge=1, le=20_000, description="recent points to return")] = 300,
) -> StreamDetail:
    """Recent values, predictions with the expected band, scores and alerts of a stream."""
    try:
        validate_stream(stream_id)
    except ValueError as exc:
        raise HTTPException(422, f"invalid stream id: {exc}") from None
    prefix = context.settings.redis_prefix
    pipe = context.redis.pipeline(transaction=False)
    pipe.get(state_key(prefix, stream_id))
    pipe.get(history_key(prefix, stream_id))
    pipe.zscore(scores_key(prefix), stream_id)
    blob, history, score = pipe.execute()
    if blob is None and not history:
        raise HTTPException(404, f"unknown stream {stream_id!r}")
    entries = parse_history(history)
    features = list(dict.fromkeys(f for e in entries for f in e.values))
    status, count, last_ts = _state_fields(context, blob)
    return StreamDetail(
        stream=stream_id,
        status=status,
        score=score,
        count=count,
        last_ts_ms=last_ts,
        features=features,
        band=BandInfo(
            k=BAND_K,
            window=BAND_WINDOW,
            method="expected ± k × 1.4826 × median |value − expected| over the previous "
            "window points",
        ),
        points=_points(entries, features, points),
        threshold=context.settings.alert_threshold,
        alerts=_stream_alerts(context, stream_id, ALERTS_PER_STREAM),
    )
