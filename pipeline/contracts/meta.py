"""Bounds on an event's `meta` (its extra fields), which alerts carry as they came.

Meta is written back out as JSON in every alert, and read again by the API and the alert
consumers. A parser's depth limit is not a writer's: orjson reads 1,023 nested arrays, but
writing them back with the json module hits Python's recursion limit, so one valid event
with deep meta killed the worker each time it alerted — at every restart. Meta is also
kept in Redis with the last 10,000 alerts, so its size is bounded too. An event whose
meta is deeper or larger than this is dead-lettered (`bad_meta`) rather than scored with
its meta silently dropped: the producer has a bug to fix, and the dead letter says which.
"""

from __future__ import annotations

from typing import Any

import orjson

META_MAX_DEPTH = 32
"""Levels of arrays/objects inside meta (meta itself is level 1): far beyond what any
reasonable tag or label structure needs, far below any writer's recursion limit."""
META_MAX_BYTES = 8 * 1024
"""Compact JSON size of meta: 10,000 alerts kept in Redis at most 80 MB of meta."""


def meta_problem(meta: dict[str, Any], message_bytes: int) -> str | None:
    """Why `meta` breaks the bounds (one line), or None. `message_bytes` is the size of
    the whole record value: meta is never larger, so small messages skip the size check."""
    if _deeper_than(meta, META_MAX_DEPTH):
        return f"meta is nested more than {META_MAX_DEPTH} levels deep"
    if message_bytes > META_MAX_BYTES:
        size = len(orjson.dumps(meta))
        if size > META_MAX_BYTES:
            return f"meta is {size} bytes as JSON; the limit is {META_MAX_BYTES}"
    return None


def _deeper_than(meta: dict[str, Any], limit: int) -> bool:
    """Whether containers nest deeper than `limit`; iterative, so depth costs no stack."""
    pending: list[tuple[Any, int]] = [(meta, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            pending.extend((v, depth + 1) for v in value.values() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            pending.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return False
