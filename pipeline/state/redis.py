"""The Redis state store: one MGET per load, one fenced Lua call per save.

The fencing comparison runs inside Redis (`fenced_save.lua`), atomically for the whole
batch, because a read-then-write from Python would race a worker that took the
partition over. The rule itself is `pipeline.state.base.accepts`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import redis

from pipeline.errors import UserError
from pipeline.settings import Settings
from pipeline.state.base import (
    BatchView,
    StateLost,
    StoreUnavailable,
    generations_key,
    split_save,
    state_key,
)
from pipeline.state.cluster import ClusterStateStore, connect_cluster, is_cluster_url
from pipeline.state.redis_base import (
    FENCED_SAVE,
    FENCED_SAVE_SHA,
    TRANSIENT,
    RedisKeyspace,
    ScriptArg,
    client_options,
    fenced_save_call,
)

SAVE_CHUNK = 1000
"""States per fenced Lua call (`RedisStateStore.save`)."""


class RedisStateStore(RedisKeyspace):
    """States in Redis: one MGET per load, one fenced EVALSHA per save."""

    def load(self, streams: Sequence[str]) -> list[bytes | None]:
        keys = [state_key(self.prefix, s) for s in streams]

        def run() -> tuple[bytes | None, list[bytes | None]]:
            pipe = self.client.pipeline(transaction=False)  # one round trip
            pipe.hget(generations_key(self.prefix), self.generation.client)
            if keys:
                pipe.mget(keys)
            # decode_responses=False (connect_redis) means values come back as bytes.
            generation, *found = pipe.execute()
            return generation, found[0] if found else []

        generation, found = self._call(run)
        self.generation.check(int(generation or 0))
        return found

    def save(self, items: Sequence[tuple[str, bytes]], view: BatchView | None = None) -> list[bool]:
        """Fenced writes of `items` with the API's `view`, in calls of at most `SAVE_CHUNK`
        states (the view's alerts and counters go with the last). Redis runs a script and
        nothing else meanwhile: one call for a whole checkpoint of 10,000 states would
        hold up every other request of the worker (its reset notices, its loads) and of
        the API for as long. Each call is atomic and fenced on its own; a crash between
        them is one more case of a checkpoint saved but not committed (replayed)."""
        if not items and (view is None or not (view.alerts or view.metrics)):
            return []
        written: list[bool] = []
        lost: StateLost | None = None
        for part, part_view in split_save(items, view, SAVE_CHUNK):
            try:
                written += self._save_chunk(part, part_view)
            except StateLost as exc:  # what follows is saved too, then the caller restores
                lost = lost or exc
                written += exc.written or []
        if lost is not None:
            raise StateLost(lost.seen, lost.found, written)
        return written

    def _save_chunk(self, items: Sequence[tuple[str, bytes]], view: BatchView | None) -> list[bool]:
        keys, args = fenced_save_call(self.prefix, items, view, client=self.generation.client)
        reply = self._call(lambda: self._fenced_set(keys, args))
        results = [True] * len(items)
        for index in reply[1:]:
            results[int(index) - 1] = False
        if view is not None:  # the generation counts saves with a view (checkpoints)
            self.generation.check(int(reply[0]), results)
        return results

    def _fenced_set(self, keys: list[str], args: list[ScriptArg]) -> list[int]:
        # The SHA is known locally, so the script is only sent when Redis lacks it
        # (first use, or after a restart / SCRIPT FLUSH).
        try:
            return self.client.evalsha(FENCED_SAVE_SHA, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.client.script_load(FENCED_SAVE)
            return self.client.evalsha(FENCED_SAVE_SHA, len(keys), *keys, *args)


log = logging.getLogger(__name__)


class EvictingRedis(UserError):
    """Redis may evict keys that have no expiry: Vigil's states would vanish."""


def refuse_evicting(client: redis.Redis) -> None:
    """Refuse a Redis whose `maxmemory-policy` can evict keys without a TTL (allkeys-*):
    it would drop states silently when full. `noeviction` (Redis refuses writes when
    full, and the worker pauses) and volatile-* (only keys with a TTL, which states never
    have) are fine. A Redis that forbids CONFIG (some managed services) is warned about."""
    try:
        found = client.config_get("maxmemory-policy")
    except redis.exceptions.ResponseError as exc:
        log.warning("cannot read Redis's maxmemory-policy (%s): make sure it is noeviction", exc)
        return
    except TRANSIENT as exc:
        raise StoreUnavailable(f"Redis unavailable: {exc}") from exc
    raw = {k.decode() if isinstance(k, bytes) else k: v for k, v in found.items()}
    policy = raw.get("maxmemory-policy", b"")
    policy = policy.decode() if isinstance(policy, bytes) else str(policy)
    if policy.startswith("allkeys-"):
        raise EvictingRedis(
            f"Redis maxmemory-policy is {policy}: it evicts stream states when memory is "
            "full; set maxmemory-policy noeviction (see deploy/README.md)"
        )


def connect_redis(url: str) -> redis.Redis:
    """A client for the state store: raw bytes, health checks, bounded waits.

    Retries are few and short on purpose: the worker has its own pause-and-retry loop
    around StoreUnavailable, and a long hidden retry would just stall a poll loop.
    A `redis+cluster://` URL gives a RedisCluster client (`pipeline.state.cluster`): it
    has the same single-key commands, which is what the API and the worker's helpers use.
    """
    if is_cluster_url(url):
        return cast("redis.Redis", connect_cluster(url))
    try:
        return redis.Redis.from_url(url, **client_options())
    except ValueError as exc:
        # The message never echoes the URL: it may carry a password.
        raise ValueError(f"invalid Redis URL: {exc}") from None


def open_store(settings: Settings) -> RedisStateStore | ClusterStateStore:
    """The state store the settings name (Redis or Redis Cluster address, key prefix)."""
    url = settings.redis_address()
    if is_cluster_url(url):
        return ClusterStateStore(connect_cluster(url), settings.redis_prefix)
    return RedisStateStore(connect_redis(url), settings.redis_prefix)
