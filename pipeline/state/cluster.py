"""The state store on Redis Cluster: the fenced save per hash slot, pipelined per node.

Every key of one stream (state, history) carries the stream as its hash tag
(`base.state_key`), so a stream lives in exactly one slot. A save groups the batch by
slot and sends one `fenced_save.lua` call per slot — the same script and the same
fencing rule as on a single Redis, atomic within the slot — all in one pipeline that
redis-py splits per node. The score ranking, the alerts stream and the counters live in
slots of their own; they are written in a second pipeline for the accepted streams only.

Exactly once survives partial failure because fencing is per stream, not per batch: a
crash or error between slots leaves some streams saved and others not, the Kafka offsets
stay uncommitted, and the replay is refused by the saved streams (their offset is
already there) and applied by the others. So any error here — MOVED/ASK during a
resharding, a master failing over, a timeout whose reply was lost — is handled the same
way: refresh the slot map, resend the whole save (identical bytes already stored count
as written), and after a few attempts raise StoreUnavailable, on which the worker pauses
and retries without committing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import redis
from redis.cluster import RedisCluster

from pipeline.state.base import (
    ALERTS_KEPT,
    BatchView,
    StoreUnavailable,
    alerts_key,
    checked_keys,
    metrics_key,
    scores_key,
    state_key,
    validate_prefix,
)
from pipeline.state.peaks import write_peaks
from pipeline.state.redis_base import (
    FENCED_SAVE,
    FENCED_SAVE_SHA,
    TRANSIENT,
    RedisKeyspace,
    client_options,
    fenced_save_call,
)

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
ATTEMPTS = 5
"""Whole-save attempts before StoreUnavailable; a failover takes the node timeout (s)."""
_T = TypeVar("_T")

# Everything a changing or failing cluster may raise; all are safe to retry (see above).
_RETRIABLE: tuple[type[Exception], ...] = (
    *TRANSIENT,
    redis.exceptions.ClusterError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.NoScriptError,
    redis.exceptions.RedisClusterException,
)


@dataclass
class _SlotGroup:
    """The positions and keys of a batch that hash to one slot."""

    slot: int
    indices: list[int]
    keys: list[str]


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def connect_cluster(url: str) -> RedisCluster:
    """A cluster client from `redis+cluster://[user:pass@]host:port` (any one node).

    Same options as `connect_redis` (`client_options`). It
    reads the slot map at once, so an unreachable cluster raises a RedisError here.
    """
    plain = url.replace("+cluster://", "://", 1)
    try:
        return RedisCluster.from_url(plain, **client_options())
    except ValueError as exc:
        # The message never echoes the URL: it may carry a password.
        raise ValueError(f"invalid Redis URL: {exc}") from None


class ClusterStateStore(RedisKeyspace):
    """States on Redis Cluster. The rest of RedisStateStore works unchanged on a cluster
    client: SCAN visits every primary, UNLINK/DELETE split their keys per slot, and the
    single-key calls route by key."""

    def __init__(self, client: RedisCluster, prefix: str) -> None:
        # RedisCluster offers the single-key commands of redis.Redis under the same names.
        super().__init__(cast("redis.Redis", client), validate_prefix(prefix))
        self.cluster = client

    def _call(self, action: Callable[[], _T]) -> _T:
        """Every call of the store, retried over a changing cluster (see the module)."""
        for attempt in range(ATTEMPTS):
            try:
                return action()
            except _RETRIABLE as exc:
                if attempt == ATTEMPTS - 1:
                    raise StoreUnavailable(f"Redis Cluster unavailable: {exc}") from exc
                time.sleep(min(0.05 * 2**attempt, 1.0))
                self._refresh()
        raise AssertionError("unreachable")

    def _refresh(self) -> None:
        """Re-read the slot map; an unreachable cluster is the next attempt's error."""
        with contextlib.suppress(*_RETRIABLE):
            self.cluster.nodes_manager.initialize()

    def load(self, streams: Sequence[str]) -> list[bytes | None]:
        if not streams:
            return []
        keys = [state_key(self.prefix, s) for s in streams]
        groups = self._by_slot(keys)
        replies = self._call(lambda: self._per_node([("MGET", *g.keys) for g in groups], groups))
        blobs: list[bytes | None] = [None] * len(keys)
        for group, values in zip(groups, replies, strict=True):
            for index, value in zip(group.indices, values, strict=True):
                blobs[index] = value
        return blobs

    def save(self, items: Sequence[tuple[str, bytes]], view: BatchView | None = None) -> list[bool]:
        if not items and (view is None or not (view.alerts or view.metrics)):
            return []
        keys = checked_keys(self.prefix, items)  # the whole batch, before any write
        groups = self._by_slot(keys)
        commands = []
        for group in groups:
            part = [items[i] for i in group.indices]
            part_view = None
            if view is not None and view.history_length > 0:
                history = [view.history[i] for i in group.indices]
                part_view = BatchView(history, (), history_length=view.history_length)
            call_keys, args = fenced_save_call(self.prefix, part, part_view, with_globals=False)
            commands.append(("EVALSHA", FENCED_SAVE_SHA, len(call_keys), *call_keys, *args))
        replies = self._call(lambda: self._per_node(commands, groups))
        results = [True] * len(items)
        for group, reply in zip(groups, replies, strict=True):
            for position in reply[1:]:  # reply[0]: no generation here (no globals)
                results[group.indices[int(position) - 1]] = False
        if view is not None:
            self._call(lambda: self._save_globals(items, results, view))
        return results

    def _by_slot(self, keys: Sequence[str]) -> list[_SlotGroup]:
        """The keys' positions grouped by hash slot, in order within each slot."""
        groups: dict[int, _SlotGroup] = {}
        for index, key in enumerate(keys):
            slot = self.cluster.keyslot(key)
            group = groups.get(slot)
            if group is None:
                group = groups[slot] = _SlotGroup(slot, [], [])
            group.indices.append(index)
            group.keys.append(key)
        return list(groups.values())

    def _per_node(self, commands: Sequence[tuple[Any, ...]], groups: list[_SlotGroup]) -> list[Any]:
        """Run one command per slot group, pipelined per node by the slot map; replies in
        order. redis-py's cluster pipeline would ask the server for the keys of every
        EVALSHA (COMMAND GETKEYS, one round trip each), so the routing is done here."""
        by_node: dict[str, list[int]] = {}
        nodes = self.cluster.nodes_manager
        for position, group in enumerate(groups):
            by_node.setdefault(nodes.get_node_from_slot(group.slot).name, []).append(position)
        replies: list[Any] = [None] * len(commands)
        for name, positions in by_node.items():
            node = self.cluster.get_node(node_name=name)
            if node is None or node.redis_connection is None:
                raise redis.exceptions.ClusterError(f"no connection to cluster node {name}")
            pipe = node.redis_connection.pipeline(transaction=False)
            for position in positions:
                pipe.execute_command(*commands[position])
            for position, reply in zip(positions, pipe.execute(raise_on_error=False), strict=True):
                replies[position] = reply
        for reply in replies:
            if isinstance(reply, redis.exceptions.NoScriptError):
                self.cluster.script_load(FENCED_SAVE)  # every primary: a new one lacks it
            if isinstance(reply, Exception):
                raise reply  # MOVED, ASK, TRYAGAIN, ...: retried by _call after a refresh
        return replies

    def _save_globals(
        self, items: Sequence[tuple[str, bytes]], written: list[bool], view: BatchView
    ) -> None:
        """Scores of the accepted streams, the batch's alerts and counters (one pipeline).

        A retry may add an alert twice to the Redis copy (as a lost reply does on one
        node); the alerts topic, not this stream, is the record of alerts."""
        ranked = {s: float(v) for (s, _), v, ok in zip(items, view.scores, written, strict=True)
                  if ok}  # fmt: skip
        pipe = self.cluster.pipeline()
        if ranked:
            pipe.zadd(scores_key(self.prefix), cast("dict[Any, float]", ranked))
        for alert in view.alerts:
            pipe.xadd(alerts_key(self.prefix), {"alert": alert}, maxlen=ALERTS_KEPT,
                      approximate=True)  # fmt: skip
        for field, amount in view.metrics:
            # "^" (set if larger) is a plain set here: a late save of a worker that lost
            # its partition can lower a mark, at worst a needless restore (fenced).
            if field.startswith(("=", "^")):
                pipe.hset(metrics_key(self.prefix), field[1:], amount)
            else:
                pipe.hincrbyfloat(metrics_key(self.prefix), field, float(amount))
        pipe.execute()

    def save_peaks(self, peaks: dict[tuple[int, str], float], ttl_s: int) -> None:
        if peaks:
            client = cast("redis.Redis", self.cluster)  # its pipeline splits per node
            self._call(lambda: write_peaks(client, self.prefix, peaks, ttl_s))
