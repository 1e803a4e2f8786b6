"""Resetting one stream: forget its learnt state and feature set, keep its fencing.

A stream can get stuck for good: one event far in the future makes every later event
`out_of_order`, a first event with the wrong feature names makes every later one
`feature_mismatch`. A reset replaces the stored state with a *reset marker*: the bare
16-byte header (`base.HEADER`) with the partition and offset of the last applied event.
A worker that loads a marker starts the stream afresh (first event, new feature set)
while still skipping replays at or below that offset, so a reset never makes an event
count twice. Workers that hold the stream in memory learn of the reset from the resets
stream (`resets_key`) before their next checkpoint save and drop what they hold.

The history the API shows and the stream's entry in the score ranking go with it. The
marker is written in one Redis transaction with a WATCH on the state key (on a Redis
Cluster too: the state and history keys share the stream's slot), so a worker's save
racing it either lands before (and is reset) or is fenced after it as any older write
would be.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import redis

from pipeline.state.base import (
    HEADER,
    MAGIC,
    history_key,
    scores_key,
    state_key,
    validate_prefix,
)

audit = logging.getLogger("vigil.audit")

RESETS_KEPT = 10_000
"""Reset notices kept in the resets stream (workers read new ones every checkpoint)."""


def resets_key(prefix: str) -> str:
    """Redis stream of reset notices (field `stream`), read by the workers."""
    return f"{validate_prefix(prefix)}:resets"


def reset_marker(partition: int, offset: int) -> bytes:
    """The stored value of a reset stream: a header with no state after it (layout 0)."""
    return HEADER.pack(MAGIC, 0, partition, offset)


def is_reset_marker(blob: bytes | None) -> bool:
    return blob is not None and len(blob) == HEADER.size and blob[:2] == MAGIC


@dataclass(frozen=True)
class ResetOutcome:
    """What was reset: where the stream's last applied event was (-1, -1 if unknown)."""

    stream: str
    partition: int
    offset: int
    notice_id: str


def reset_stream(client: redis.Redis, prefix: str, stream: str, actor: str) -> ResetOutcome | None:
    """Reset `stream` (see the module docstring); None if no state is stored for it.

    Audited: one `vigil.audit` log line says who (`actor`) reset what, and where the
    stream's last applied event was."""
    key = state_key(prefix, stream)
    found: list[tuple[int, int]] = []

    def transaction(pipe: Any) -> None:
        found.clear()
        old = cast("bytes | None", pipe.get(key))
        if old is None:
            return
        partition, offset = -1, -1
        if len(old) >= HEADER.size and old[:2] == MAGIC:
            _, _, partition, offset = HEADER.unpack_from(old)
        found.append((partition, offset))
        pipe.multi()
        pipe.set(key, reset_marker(partition, offset))
        pipe.delete(history_key(prefix, stream))

    # The state and history keys share the stream's hash slot, so this transaction also
    # runs on a Redis Cluster; the ranking and the notice live in other slots and follow
    # it. The notice comes last: a worker that reads it then loads the marker.
    client.transaction(transaction, key)
    if not found:
        return None
    client.zrem(scores_key(prefix), stream)
    notice = client.xadd(resets_key(prefix), {"stream": stream.encode("utf-8", "surrogatepass")},
                         maxlen=RESETS_KEPT, approximate=True)  # fmt: skip
    notice_id = notice.decode() if isinstance(notice, bytes) else str(notice)
    outcome = ResetOutcome(stream, found[0][0], found[0][1], notice_id)
    audit.warning("stream reset: stream=%r by=%s prefix=%s last_partition=%d last_offset=%d",
                  stream, actor, prefix, outcome.partition, outcome.offset)  # fmt: skip
    return outcome


def read_resets(client: redis.Redis, prefix: str, after: str) -> tuple[list[str], str]:
    """Streams reset after notice id `after` ("0-0": all kept), and the newest id seen."""
    rows = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]",
        client.xrange(resets_key(prefix), min=f"({after}", max="+"),
    )
    streams = [fields[b"stream"].decode("utf-8", "surrogatepass") for _, fields in rows]
    return streams, (rows[-1][0].decode() if rows else after)


def newest_reset(client: redis.Redis, prefix: str) -> str:
    """Id of the newest reset notice ("0-0" if none): where a starting worker begins."""
    rows = cast("list[tuple[bytes, Any]]", client.xrevrange(resets_key(prefix), count=1))
    return rows[0][0].decode() if rows else "0-0"
