"""Typed reads of what the workers keep in Redis, shared by the routes.

redis-py's annotations cover every decode mode at once (bytes | str | None ...); the API
client always returns bytes (`connect_redis`), so the casts live here, once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import redis
from redis.cluster import RedisCluster

SCAN_CHUNK = 500
AlertRow = tuple[bytes, dict[bytes, bytes]]


def ranked(
    client: redis.Redis, key: str, high: float | str, low: float | str, start: int, num: int
) -> list[tuple[bytes, float]]:
    """(member, score) pairs of a sorted set by score, highest first."""
    rows = client.zrevrangebyscore(key, high, low, start=start, num=num, withscores=True)
    return cast("list[tuple[bytes, float]]", rows)


def get_many(client: redis.Redis, keys: list[str]) -> list[bytes | None]:
    """MGET; on Redis Cluster one MGET per slot (the keys are streams' own slots)."""
    if not keys:
        return []
    if isinstance(client, RedisCluster):
        return cast("list[bytes | None]", client.mget_nonatomic(keys))
    return cast("list[bytes | None]", client.mget(keys))


def decode_alert(entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any]:
    """An alerts-stream entry as the alert's JSON object plus `cursor`, its entry id."""
    body: dict[str, Any] = json.loads(fields[b"alert"])
    body["cursor"] = entry_id.decode()
    return body


def alert_matches(body: dict[str, Any], stream: str | None, min_score: float | None) -> bool:
    """The /alerts filters: only this stream, only scores at or above min_score."""
    if stream is not None and body.get("stream") != stream:
        return False
    return min_score is None or float(body.get("score", 0.0)) >= min_score


def alerts_newest_first(
    client: redis.Redis, key: str, before: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every alert Redis keeps (older than entry id `before`, if given), newest first, read
    in chunks as the caller consumes them. Entry ids only grow, so pages that follow
    `before` neither repeat nor skip an alert while new ones arrive."""
    upper = "+"
    if before is not None:
        ms, seq = (int(part) for part in before.split("-"))
        if ms == seq == 0:
            return  # nothing is older than the first possible id
        if max(ms, seq) < 2**64:  # a larger id is after every id: start from the newest
            upper = "(" + before
    while True:
        rows = cast("list[AlertRow]", client.xrevrange(key, max=upper, min="-", count=SCAN_CHUNK))
        for entry_id, fields in rows:
            yield decode_alert(entry_id, fields)
        if len(rows) < SCAN_CHUNK:
            return
        upper = "(" + rows[-1][0].decode()  # exclusive range: Redis >= 6.2
