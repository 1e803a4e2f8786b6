"""Each stream's largest score per time bucket: what finds an incident after it is over.

The latest score ranks streams by *now*; an incident that ended an hour ago ranks low by
then. So the worker also keeps, per bucket of event time (`peak_bucket_seconds`, an hour
by default), the largest score each stream reached in it:

- `{prefix}:pk:{<bucket start ms>}`  sorted set: stream id -> its largest score in the
  bucket (ZADD GT, so a replayed batch writes the same maximum again: no fencing needed);
  expires `peak_retention_hours` after its last write.

Only scores at or above `alert_clear` are kept: a quiet stream-hour costs nothing, so the
memory is that of the anomalous stream-hours (about 70 bytes each in Redis), not of
every stream times every hour. Streams ranked by their peak in a time range, and the
swim lanes (streams x buckets, colour = peak), are unions and lookups of these sets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import numpy as np
import redis
from redis.cluster import RedisCluster

from pipeline.state.base import validate_prefix

MAX_BUCKETS = 2000  # a range of more buckets than this is refused (one key per bucket)


def peak_key(prefix: str, bucket_ms: int) -> str:
    return f"{validate_prefix(prefix)}:pk:{bucket_ms}"


def batch_peaks(
    streams: list[str],
    sidx: np.ndarray,
    ts_ms: np.ndarray,
    scores: np.ndarray,
    bucket_ms: int,
    floor: float,
) -> dict[tuple[int, str], float]:
    """(bucket start, stream) -> largest score at or above `floor`, for a batch's events."""
    keep = scores >= floor
    if not keep.any():
        return {}
    buckets = (ts_ms[keep] // bucket_ms) * bucket_ms
    out: dict[tuple[int, str], float] = {}
    for b, i, s in zip(buckets.tolist(), sidx[keep].tolist(), scores[keep].tolist(), strict=True):
        key = (b, streams[i])
        if s > out.get(key, -1.0):
            out[key] = s
    return out


def merge_peaks(into: dict[tuple[int, str], float], new: dict[tuple[int, str], float]) -> None:
    for key, score in new.items():
        if score > into.get(key, -1.0):
            into[key] = score


def write_peaks(
    client: redis.Redis, prefix: str, peaks: dict[tuple[int, str], float], ttl_s: int
) -> None:
    """One pipelined round trip: ZADD GT per bucket, and its expiry."""
    by_bucket: dict[int, dict[str, float]] = {}
    for (bucket, stream), score in peaks.items():
        by_bucket.setdefault(bucket, {})[stream] = score
    with client.pipeline(transaction=False) as pipe:
        for bucket, members in by_bucket.items():
            key = peak_key(prefix, bucket)
            pipe.zadd(key, cast("dict[Any, float]", members), gt=True)
            pipe.expire(key, ttl_s)
        pipe.execute()


def buckets_in(from_ms: int, to_ms: int, bucket_ms: int) -> list[int]:
    """Bucket starts overlapping [from_ms, to_ms]; ValueError past MAX_BUCKETS."""
    first = (from_ms // bucket_ms) * bucket_ms
    n = (to_ms - first) // bucket_ms + 1
    if n > MAX_BUCKETS:
        raise ValueError(f"the range spans {n} buckets; at most {MAX_BUCKETS}")
    return [first + k * bucket_ms for k in range(max(n, 0))]


def ranked_peaks(
    client: redis.Redis, prefix: str, buckets: Iterable[int], limit: int
) -> list[tuple[str, float]]:
    """Streams by their largest kept score over the buckets, highest first."""
    keys = [peak_key(prefix, b) for b in buckets]
    if not keys:
        return []
    if isinstance(client, RedisCluster):
        pairs = _union_max(client, keys)  # the bucket keys live in different slots
    else:
        pairs = cast("list[tuple[bytes, float]]",
                     client.zunion(keys, aggregate="MAX", withscores=True))  # fmt: skip
    pairs.sort(key=lambda p: (-p[1], p[0]))
    return [(m.decode("utf-8", "surrogatepass"), float(s)) for m, s in pairs[:limit]]


def _union_max(client: RedisCluster, keys: list[str]) -> list[tuple[bytes, float]]:
    """ZUNION ... AGGREGATE MAX done here: one ZRANGE per bucket, pipelined per node."""
    pipe = client.pipeline()
    for key in keys:
        pipe.zrange(key, 0, -1, withscores=True)
    best: dict[bytes, float] = {}
    for rows in cast("list[list[tuple[bytes, float]]]", pipe.execute()):
        for member, score in rows:
            if score > best.get(member, float("-inf")):
                best[member] = score
    return list(best.items())


def lane_peaks(
    client: redis.Redis, prefix: str, buckets: list[int], streams: list[str]
) -> list[list[float | None]]:
    """[stream][bucket] the stream's kept peak in the bucket (None: below alert_clear)."""
    if not streams or not buckets:
        return [[] for _ in streams]
    with client.pipeline(transaction=False) as pipe:
        for b in buckets:
            pipe.zmscore(peak_key(prefix, b), streams)
        columns = cast("list[list[float | None]]", pipe.execute())
    return [[col[i] for col in columns] for i in range(len(streams))]
