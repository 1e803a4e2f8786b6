"""The Redis state store: one MGET per load, one fenced Lua call per save.

The fencing comparison runs inside Redis (`fenced_save.lua`), atomically for the whole
batch, because a read-then-write from Python would race a worker that took the
partition over. The rule itself is `pipeline.state.base.accepts`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from pipeline.settings import Settings
from pipeline.state.base import (
    ALERTS_KEPT,
    BatchView,
    StoreUnavailable,
    alerts_key,
    checked_keys,
    history_key,
    meta_key,
    metrics_key,
    scores_key,
    state_key,
    validate_prefix,
)
from pipeline.state.peaks import write_peaks

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_T = TypeVar("_T")


# Errors that say "try again later", not "your request is wrong". Connection errors
# include BusyLoadingError (Redis restarting) and authentication failures.
TRANSIENT: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
)


# The script lives beside this module as a file, so it reads (and lints) as Lua.
FENCED_SAVE = (Path(__file__).parent / "fenced_save.lua").read_text()
FENCED_SAVE_SHA = hashlib.sha1(FENCED_SAVE.encode()).hexdigest()


ScriptArg = bytes | str | float | int


def fenced_save_call(
    prefix: str,
    items: Sequence[tuple[str, bytes]],
    view: BatchView | None,
    *,
    with_globals: bool = True,
) -> tuple[list[str], list[ScriptArg]]:
    """KEYS and ARGV of one `fenced_save.lua` call (its header comment has the layout).

    Without globals only the states and the history are written: on Redis Cluster the
    scores, alerts and metrics keys live in other slots than the streams'.
    """
    keys = checked_keys(prefix, items)
    args: list[ScriptArg] = [len(items), 0, ALERTS_KEPT, 0, b""]
    args += [blob for _, blob in items]
    if view is None:
        return keys, args
    streams = [stream for stream, _ in items]
    if view.history_length > 0:
        keys += [history_key(prefix, s) for s in streams]
        args += view.history
        args[1] = view.history_length
    if with_globals:
        keys += [scores_key(prefix), alerts_key(prefix), metrics_key(prefix)]
        args[3] = len(view.alerts)
        args[4] = np.asarray(view.scores, dtype="<f8").tobytes()
        args += [*streams, *view.alerts]
        for field, amount in view.metrics:
            args += [field, amount]
    return keys, args


class RedisStateStore:
    """States in Redis: one MGET per load, one fenced EVALSHA per save."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = validate_prefix(prefix)

    def _call(self, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except TRANSIENT as exc:
            raise StoreUnavailable(f"Redis unavailable: {exc}") from exc

    def load(self, streams: Sequence[str]) -> list[bytes | None]:
        if not streams:
            return []
        keys = [state_key(self.prefix, s) for s in streams]
        # decode_responses=False (connect_redis) means values come back as bytes.
        return cast("list[bytes | None]", self._call(lambda: self.client.mget(keys)))

    def save(self, items: Sequence[tuple[str, bytes]], view: BatchView | None = None) -> list[bool]:
        if not items and (view is None or not (view.alerts or view.metrics)):
            return []
        keys, args = fenced_save_call(self.prefix, items, view)
        refused = self._call(lambda: self._fenced_set(keys, args))
        results = [True] * len(items)
        for index in refused:
            results[int(index) - 1] = False
        return results

    def save_peaks(self, peaks: dict[tuple[int, str], float], ttl_s: int) -> None:
        if peaks:
            self._call(lambda: write_peaks(self.client, self.prefix, peaks, ttl_s))

    def _fenced_set(self, keys: list[str], args: list[ScriptArg]) -> list[int]:
        # The SHA is known locally, so the script is only sent when Redis lacks it
        # (first use, or after a restart / SCRIPT FLUSH).
        try:
            return self.client.evalsha(FENCED_SAVE_SHA, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.client.script_load(FENCED_SAVE)
            return self.client.evalsha(FENCED_SAVE_SHA, len(keys), *keys, *args)

    def _scan(self, kind: str) -> list[bytes]:
        # Matching up to the "{" means another prefix ("vigil:s" vs "vigil") never matches.
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + f":{kind}:\\{{*"
        return list(self.client.scan_iter(match=pattern, count=1000))

    def delete_all(self) -> None:
        def run() -> None:
            keys = self._scan("s") + self._scan("m")
            for start in range(0, len(keys), 1000):
                self.client.unlink(*keys[start : start + 1000])

        self._call(run)

    def count(self) -> int:
        return self._call(lambda: len(self._scan("s")))

    def stored_bytes(self, stream: str) -> int:
        key = state_key(self.prefix, stream)
        usage = self._call(lambda: self.client.memory_usage(key))
        return int(usage or 0)

    def set_meta(self, name: str, value: bytes) -> None:
        key = meta_key(self.prefix, name)
        self._call(lambda: self.client.set(key, value))

    def get_meta(self, name: str) -> bytes | None:
        key = meta_key(self.prefix, name)
        return self._call(lambda: self.client.get(key))  # type: ignore[return-value]

    def delete_meta(self, *names: str) -> None:
        keys = [meta_key(self.prefix, name) for name in names]
        if keys:
            self._call(lambda: self.client.delete(*keys))


def client_options() -> dict[str, Any]:
    """Raw bytes, health checks, bounded waits, few hidden retries (see connect_redis)."""
    return {
        "decode_responses": False,
        "health_check_interval": 15,
        "socket_connect_timeout": 3.0,
        "socket_timeout": 10.0,
        "socket_keepalive": True,
        "retry": Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), retries=2),
    }


def connect_redis(url: str) -> redis.Redis:
    """A client for the state store: raw bytes, health checks, bounded waits.

    Retries are few and short on purpose: the worker has its own pause-and-retry loop
    around StoreUnavailable, and a long hidden retry would just stall a poll loop.
    A `redis+cluster://` URL gives a RedisCluster client (`pipeline.state.cluster`): it
    has the same single-key commands, which is what the API and the worker's helpers use.
    """
    from pipeline.state.cluster import connect_cluster, is_cluster_url

    if is_cluster_url(url):
        return cast("redis.Redis", connect_cluster(url))
    try:
        return redis.Redis.from_url(url, **client_options())
    except ValueError as exc:
        # The message never echoes the URL: it may carry a password.
        raise ValueError(f"invalid Redis URL: {exc}") from None


def open_store(settings: Settings) -> RedisStateStore:
    """The state store the settings name (Redis or Redis Cluster address, key prefix)."""
    from pipeline.state.cluster import ClusterStateStore, connect_cluster, is_cluster_url

    url = settings.redis_address()
    if is_cluster_url(url):
        return ClusterStateStore(connect_cluster(url), settings.redis_prefix)
    return RedisStateStore(connect_redis(url), settings.redis_prefix)
