"""What people say about episodes (acknowledged, false positive, a note) and silences.

Kept in Redis beside the workers' view, bounded:

- `{prefix}:labels`    hash: episode id -> the episode's label (JSON, see `Label`);
- `{prefix}:labels:t`  sorted set: episode id -> last change (epoch ms); past
  `LABELS_KEPT` episodes the oldest-changed labels are dropped (export them first:
  `vigil labels export` writes them as labelled data);
- `{prefix}:silences`  hash: silence id -> JSON (`Silence`); expired silences are removed
  on the next write, and at most `SILENCES_KEPT` are active.

A silence names one stream exactly or a glob pattern of stream ids (`fnmatch`, e.g.
`card-*`) and lasts a duration; the worker's sinks skip alerts of silenced streams (the
alerts topic still gets every alert).
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, cast

import redis

from pipeline.state.base import validate_prefix

LABELS_KEPT = 50_000
SILENCES_KEPT = 1_000


def labels_key(prefix: str) -> str:
    return f"{validate_prefix(prefix)}:labels"


def label_times_key(prefix: str) -> str:
    return f"{validate_prefix(prefix)}:labels:t"


def silences_key(prefix: str) -> str:
    return f"{validate_prefix(prefix)}:silences"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Label:
    """One episode's label: the facts of the episode and what people said about it."""

    episode: str
    stream: str
    start_ms: int
    peak: float
    acknowledged_by: str | None = None
    acknowledged_ms: int | None = None
    false_positive: bool | None = None  # None = nobody said
    note: str = ""
    updated_ms: int = 0


def get_labels(client: redis.Redis, prefix: str, episodes: list[str]) -> dict[str, Label]:
    if not episodes:
        return {}
    raw = cast("list[bytes | None]", client.hmget(labels_key(prefix), episodes))
    return {e: Label(**json.loads(r)) for e, r in zip(episodes, raw, strict=True) if r}


def put_label(client: redis.Redis, prefix: str, label: Label) -> Label:
    """Store `label` (stamped now) and drop the oldest-changed labels past the bound."""
    label.updated_ms = now_ms()
    key, times = labels_key(prefix), label_times_key(prefix)
    # Not a transaction: the two keys sit in different slots of a Redis Cluster, and a
    # label whose time is written a moment later (or trimmed twice) harms nothing.
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(key, label.episode, json.dumps(asdict(label)))
        pipe.zadd(times, {label.episode: label.updated_ms})
        pipe.zrange(times, 0, -LABELS_KEPT - 1)
        old = cast("list[Any]", pipe.execute())[2]
    if old:
        with client.pipeline(transaction=False) as pipe:
            pipe.hdel(key, *old)
            pipe.zrem(times, *old)
            pipe.execute()
    return label


def all_labels(client: redis.Redis, prefix: str, since_ms: int = 0) -> list[Label]:
    """Every kept label changed at or after `since_ms`, oldest change first."""
    ids = cast("list[bytes]", client.zrangebyscore(label_times_key(prefix), since_ms, "+inf"))
    found = get_labels(client, prefix, [i.decode() for i in ids])
    return list(found.values())


@dataclass
class Silence:
    id: str
    stream: str | None  # one stream, exactly
    pattern: str | None  # or a glob of stream ids
    until_ms: int
    created_ms: int
    created_by: str
    note: str = ""

    def matches(self, stream: str) -> bool:
        if self.stream is not None:
            return stream == self.stream
        return self.pattern is not None and fnmatch.fnmatchcase(stream, self.pattern)


def active_silences(client: redis.Redis, prefix: str, at_ms: int | None = None) -> list[Silence]:
    at = now_ms() if at_ms is None else at_ms
    raw = cast("dict[bytes, bytes]", client.hgetall(silences_key(prefix)))
    silences = [Silence(**json.loads(v)) for v in raw.values()]
    return sorted((s for s in silences if s.until_ms > at), key=lambda s: s.until_ms)


def add_silence(
    client: redis.Redis,
    prefix: str,
    *,
    stream: str | None,
    pattern: str | None,
    seconds: float,
    by: str,
    note: str = "",
) -> Silence:
    """A new silence; raises ValueError when SILENCES_KEPT are already active."""
    key = silences_key(prefix)
    now = now_ms()
    raw = cast("dict[bytes, bytes]", client.hgetall(key))
    expired = [k for k, v in raw.items() if json.loads(v)["until_ms"] <= now]
    if expired:
        client.hdel(key, *expired)
    if len(raw) - len(expired) >= SILENCES_KEPT:
        raise ValueError(f"{SILENCES_KEPT} silences are active already; remove one first")
    silence = Silence(
        id=uuid.uuid4().hex, stream=stream, pattern=pattern, until_ms=now + int(seconds * 1000),
        created_ms=now, created_by=by, note=note,
    )  # fmt: skip
    client.hset(key, silence.id, json.dumps(asdict(silence)))
    return silence


def remove_silence(client: redis.Redis, prefix: str, silence_id: str) -> bool:
    return bool(client.hdel(silences_key(prefix), silence_id))


class SilenceCache:
    """`cache(stream)` -> silenced now? Re-reads Redis at most every `refresh_s`, so a
    sink thread asks once per alert without a round trip each time."""

    def __init__(self, client: redis.Redis, prefix: str, refresh_s: float = 10.0) -> None:
        self.client, self.prefix, self.refresh_s = client, prefix, refresh_s
        self._silences: list[Silence] = []
        self._read_at = -float("inf")
        self._lock = threading.Lock()

    def __call__(self, stream: str) -> bool:
        with self._lock:
            if time.monotonic() - self._read_at >= self.refresh_s:
                self._silences = active_silences(self.client, self.prefix)
                self._read_at = time.monotonic()
            silences = self._silences
        now = now_ms()
        return any(s.until_ms > now and s.matches(stream) for s in silences)
