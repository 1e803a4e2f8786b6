"""What both Redis state stores share (`redis.RedisStateStore` on one node,
`cluster.ClusterStateStore` on Redis Cluster): client options, the errors worth a retry,
the fenced save script with its call layout, and the keyspace calls (meta values,
counting, deleting) that route by key on either client.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from pipeline.state.base import (
    ALERTS_KEPT,
    BatchView,
    Generation,
    StoreUnavailable,
    alerts_key,
    checked_keys,
    committed_field,
    generations_key,
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
    client: str = "",
) -> tuple[list[str], list[ScriptArg]]:
    """KEYS and ARGV of one `fenced_save.lua` call (its header comment has the layout).

    Without globals only the states and the history are written: on Redis Cluster the
    scores, alerts and metrics keys live in other slots than the streams'. With globals
    and a `client` id, the save also increments that client's generation.
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
        if client:
            keys.append(generations_key(prefix))
            args.append(client)
    return keys, args


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


class RedisKeyspace:
    """The store calls that are the same on one Redis and on a cluster client (SCAN visits
    every primary, UNLINK/DELETE split their keys per slot, single-key calls route)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = validate_prefix(prefix)
        self.generation = Generation()

    def committed_marks(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        if not partitions:
            return {}
        fields = [committed_field(topic, p) for p in partitions]
        found = self._call(lambda: self.client.hmget(metrics_key(self.prefix), fields))
        return {p: int(float(v)) for p, v in zip(partitions, found, strict=True) if v is not None}

    def _call(self, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except TRANSIENT as exc:
            raise StoreUnavailable(f"Redis unavailable: {exc}") from exc

    def save_peaks(self, peaks: dict[tuple[int, str], float], ttl_s: int) -> None:
        if peaks:
            self._call(lambda: write_peaks(self.client, self.prefix, peaks, ttl_s))

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
