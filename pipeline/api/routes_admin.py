"""Admin actions: they change what the workers hold, so they need the admin token."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from pipeline.api.deps import ERRORS, AdminOnly, Context, StreamIdPath
from pipeline.api.schemas import ErrorBody
from pipeline.state.base import validate_stream
from pipeline.state.reset import reset_stream

router = APIRouter(tags=["admin"], dependencies=AdminOnly, responses=ERRORS)


class StreamReset(BaseModel):
    stream: str
    last_partition: int
    last_offset: int
    detail: str


@router.post(
    "/streams/{stream_id:path}/reset",
    response_model=StreamReset,
    responses={404: {"model": ErrorBody, "description": "no state stored for the stream"}},
)
def reset(
    request: Request,
    context: Context,
    stream_id: StreamIdPath,
) -> StreamReset:
    """Forget a stream's learnt state and feature set (audited in the API's log); its next
    event starts it afresh. Events already applied are not applied again."""
    try:
        validate_stream(stream_id)
    except ValueError as exc:
        raise HTTPException(422, f"invalid stream id: {exc}") from None
    client = request.client
    actor = f"api:{client.host if client else 'unknown'}"
    outcome = reset_stream(context.redis, context.settings.redis_prefix, stream_id, actor)
    if outcome is None:
        raise HTTPException(404, f"unknown stream {stream_id!r}")
    return StreamReset(
        stream=stream_id,
        last_partition=outcome.partition,
        last_offset=outcome.offset,
        detail="reset: the stream's next event starts it afresh",
    )
