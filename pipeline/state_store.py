"""Per-stream state store: Redis with offset fencing, plus an in-memory reference.

The worker loads a whole polled batch of states with one MGET and saves the new states
with one EVALSHA. A state is an opaque blob from the detector except for a 16-byte
header (`HEADER`: magic, layout version, Kafka partition, Kafka offset of the last
applied event). The store reads only that header, to fence writes: a save is refused
when the stored blob has the same partition and an offset at or beyond the new one, so
a worker that lost its partition and lags behind cannot overwrite newer state
(invariant "nothing is applied twice"). The comparison runs inside Redis, atomically
for the whole batch, because a read-then-write from Python would race the new owner.

A save of bytes identical to what is stored is reported as written: re-sending a batch
whose reply was lost (timeout, then retry) must not look like a lost partition.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

import numpy as np
import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from pipeline.history import append_points

HEADER = struct.Struct("<2sHiq")
"""magic b"VG", layout version, partition of the last applied event, its offset."""
MAGIC = b"VG"
MAX_STREAM_LENGTH = 200
MAX_OFFSET = 2**53 - 1
"""Lua numbers are doubles: offsets above this would compare wrongly inside Redis."""

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_T = TypeVar("_T")


class StoreUnavailable(Exception):
    """Redis cannot be reached or cannot accept writes right now.

    The worker pauses and retries the batch without committing Kafka offsets.
    """


# Errors that say "try again later", not "your request is wrong". Connection errors
# include BusyLoadingError (Redis restarting) and authentication failures.
_TRANSIENT: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
)


def validate_stream(stream: str) -> str:
    """Refuse stream ids that cannot be stored safely; return the id unchanged."""
    if not isinstance(stream, str) or not stream:
        raise ValueError("stream id must be a non-empty string")
    if len(stream) > MAX_STREAM_LENGTH:
        raise ValueError(f"stream id longer than {MAX_STREAM_LENGTH} characters")
    if stream.isprintable():  # one C call: no control character, no surrogate
        return stream
    for char in stream:
        category = unicodedata.category(char)
        if category == "Cc":
            raise ValueError(f"stream id contains control character {char!r}")
        if category == "Cs":
            raise ValueError("stream id contains an unpaired surrogate")
    return stream


def validate_prefix(prefix: str) -> str:
    """A prefix must not contain braces (it would move the hash tag) or whitespace."""
    if not isinstance(prefix, str) or not prefix or len(prefix) > 100:
        raise ValueError("Redis key prefix must be 1-100 characters")
    if any(c in "{}" or not c.isprintable() or c.isspace() for c in prefix):
        raise ValueError(f"Redis key prefix {prefix!r} must not contain braces or whitespace")
    return prefix


def _escape(stream: str) -> str:
    # '%' first, so the encoding stays injective: "%7B" and "{" map to different keys.
    return stream.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


@functools.lru_cache(maxsize=1 << 18)
def state_key(prefix: str, stream: str) -> str:
    """Redis key of a stream's state: `{prefix}:s:{<escaped stream>}`.

    The braces are a Redis Cluster hash tag, so everything about one stream lands on
    one slot; escaping `{`, `}` and `%` keeps any stream id inside its own tag.
    """
    return f"{validate_prefix(prefix)}:s:{{{_escape(validate_stream(stream))}}}"


ALERTS_KEPT = 10_000
"""Recent alerts kept in Redis for the API (the alerts topic keeps them all)."""


@functools.lru_cache(maxsize=1 << 18)
def history_key(prefix: str, stream: str) -> str:
    """Recent values/predictions/scores of a stream, for the API (see pipeline.history)."""
    return f"{validate_prefix(prefix)}:h:{{{_escape(validate_stream(stream))}}}"


def scores_key(prefix: str) -> str:
    return f"{validate_prefix(prefix)}:scores"


def alerts_key(prefix: str) -> str:
    return f"{validate_prefix(prefix)}:alerts"


def metrics_key(prefix: str) -> str:
    """The workers' counters (hash), read by the API's /metrics."""
    return f"{validate_prefix(prefix)}:metrics"


def meta_key(prefix: str, name: str) -> str:
    """Redis key of a small worker-wide value, e.g. the live model version."""
    return f"{validate_prefix(prefix)}:m:{{{_escape(validate_stream(name))}}}"


def check_header(blob: bytes) -> tuple[int, int]:
    """Return (partition, offset) from a state blob, or raise ValueError if malformed."""
    if not isinstance(blob, bytes):
        raise ValueError(f"state blob must be bytes, not {type(blob).__name__}")
    if len(blob) < HEADER.size:
        raise ValueError(f"state blob shorter than its {HEADER.size}-byte header")
    magic, _layout, partition, offset = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError(f"state blob does not start with {MAGIC!r}")
    if partition < 0 or not 0 <= offset <= MAX_OFFSET:
        raise ValueError(f"state blob has invalid partition/offset {partition}/{offset}")
    return partition, offset


def accepts(stored: bytes | None, new: bytes) -> bool:
    """The fencing rule; `_FENCED_SET` is the same rule in Lua and must stay in step."""
    if stored is None or stored == new:
        return True
    if len(stored) < HEADER.size or stored[:2] != MAGIC:
        return True  # an unreadable stored state must not wedge its stream forever
    _, _, old_partition, old_offset = HEADER.unpack_from(stored)
    _, _, new_partition, new_offset = HEADER.unpack_from(new)
    return old_partition != new_partition or old_offset < new_offset


def _checked_keys(prefix: str, items: Sequence[tuple[str, bytes]]) -> list[str]:
    """Validate a whole batch before any write, so a bad item never half-applies it."""
    keys = []
    for stream, blob in items:
        keys.append(state_key(prefix, stream))
        check_header(blob)
    return keys


@dataclass(frozen=True)
class BatchView:
    """The API's view of a saved batch, aligned with the saved items (pipeline.history)."""

    history: Sequence[bytes]
    scores: Sequence[float]
    alerts: Sequence[bytes] = ()
    history_length: int = 100
    metrics: Sequence[tuple[str, float | str]] = ()  # ("=name", value) sets, else increments


class StateStore(Protocol):
    """Batched per-stream state storage.

    Every call takes a whole batch and answers in input order, so an implementation is
    free to split the batch however its backend needs. A Redis Cluster store would group
    the keys by hash slot (`state_key` puts each stream in its own hash tag), send one
    MGET / EVALSHA per group, pipelined per node, and reassemble the answers in order —
    without any change to callers.
    """

    def load(self, streams: Sequence[str]) -> list[bytes | None]:
        """Stored blobs, None for streams never saved."""
        ...

    def save(self, items: Sequence[tuple[str, bytes]], view: BatchView | None = None) -> list[bool]:
        """Write (stream, blob) pairs in order; True = written, False = refused by fencing.

        With a view, the same call appends each accepted stream's history entry, updates
        its latest score and adds the batch's alerts (what the API shows).
        """
        ...

    def delete_all(self) -> None:
        """Remove every state and meta value under this prefix (tests and demo reset)."""
        ...

    def count(self) -> int:
        """Number of streams with a stored state under this prefix."""
        ...

    def stored_bytes(self, stream: str) -> int:
        """Bytes the stream's state takes in the backend, 0 if absent."""
        ...

    def set_meta(self, name: str, value: bytes) -> None:
        """Store a small worker-wide value (no fencing)."""
        ...

    def get_meta(self, name: str) -> bytes | None:
        """Read a value written by set_meta, None if absent."""
        ...


class MemoryStateStore:
    """Dict-backed store with the same semantics as Redis: unit tests and the reference."""

    def __init__(self, prefix: str = "vigil") -> None:
        self.prefix = validate_prefix(prefix)
        self._states: dict[str, bytes] = {}
        self._meta: dict[str, bytes] = {}
        self.history: dict[str, bytes] = {}
        self.scores: dict[str, float] = {}
        self.alerts: list[bytes] = []
        self.metrics: dict[str, float | str] = {}

    def load(self, streams: Sequence[str]) -> list[bytes | None]:
        return [self._states.get(state_key(self.prefix, s)) for s in streams]

    def save(self, items: Sequence[tuple[str, bytes]], view: BatchView | None = None) -> list[bool]:
        keys = _checked_keys(self.prefix, items)
        results = []
        for i, (key, (stream, blob)) in enumerate(zip(keys, items, strict=True)):
            ok = accepts(self._states.get(key), blob)
            if ok:
                self._states[key] = blob
                if view is not None:
                    if view.history_length > 0 and view.history[i]:
                        self.history[stream] = append_points(
                            self.history.get(stream), view.history[i], view.history_length
                        )
                    self.scores[stream] = float(view.scores[i])
            results.append(ok)
        if view is not None:
            for field, amount in view.metrics:
                if field.startswith("="):
                    self.metrics[field[1:]] = amount
                else:
                    self.metrics[field] = float(self.metrics.get(field, 0.0)) + float(amount)
            self.alerts.extend(view.alerts)
            del self.alerts[: max(0, len(self.alerts) - ALERTS_KEPT)]
        return results

    def delete_all(self) -> None:
        self._states.clear()
        self._meta.clear()

    def count(self) -> int:
        return len(self._states)

    def stored_bytes(self, stream: str) -> int:
        key = state_key(self.prefix, stream)
        blob = self._states.get(key)
        return 0 if blob is None else len(key.encode()) + len(blob)

    def set_meta(self, name: str, value: bytes) -> None:
        self._meta[meta_key(self.prefix, name)] = bytes(value)

    def get_meta(self, name: str) -> bytes | None:
        return self._meta.get(meta_key(self.prefix, name))


# ARGV[1] = n states, ARGV[2] = history length (0: no history keys or entries),
# ARGV[3] = alerts kept, ARGV[4] = number of alerts, ARGV[5] = the n latest scores as
# little-endian doubles in one string (one argument instead of n); then n blobs.
# KEYS[1..n] are state keys (headers already checked in Python). With a view (#KEYS > n):
# if the history length is > 0, KEYS[n+1..2n] are history keys and ARGV continues with n
# history entries; then KEYS[h+1] the scores zset, KEYS[h+2] the alerts stream, KEYS[h+3]
# the metrics hash (h = n or 2n), and ARGV continues with n stream ids, the alerts, then
# (field, increment) metric pairs (a field starting with "=" is set, not incremented).
# Returns the 1-based indices of refused writes. Keys are handled in order, so a stream
# that appears twice in one batch behaves as two consecutive saves.
#
# Only the stored header is read (GETRANGE): fetching every old state whole would move
# another copy of them through the script; the whole value is read only on an offset tie,
# where an identical rewrite (a retried save that had landed) must still be accepted.
# The score index is updated 500 members per ZADD: one call per stream cost more than the
# state write itself (measured with INFO commandstats at 10,000 streams).
_FENCED_SET = """
local n = tonumber(ARGV[1])
local hlen = tonumber(ARGV[2])
local kept = tonumber(ARGV[3])
local n_alerts = tonumber(ARGV[4])
local scores = ARGV[5]
local view = #KEYS > n
local h = n
if view and hlen > 0 then h = 2 * n end
local streams = 5 + n
if hlen > 0 then streams = 5 + 2 * n end
local refused = {}
local ranked = {}
for i = 1, n do
  local key = KEYS[i]
  local new = ARGV[5 + i]
  local old = redis.call('GETRANGE', key, 0, 15)
  local write = true
  if #old >= 16 and string.sub(old, 1, 2) == 'VG' then
    local old_partition = struct.unpack('<i4', old, 5)
    local new_partition = struct.unpack('<i4', new, 5)
    if old_partition == new_partition then
      local old_offset = struct.unpack('<i8', old, 9)
      local new_offset = struct.unpack('<i8', new, 9)
      write = old_offset < new_offset
      if old_offset == new_offset then
        write = redis.call('GET', key) == new
      end
    end
  end
  if write then
    redis.call('SET', key, new)
    if view then
      if hlen > 0 then
        local add = ARGV[5 + n + i]
        if #add > 0 then
          -- same rule as pipeline.history.append_points
          local head_size, point_size = struct.unpack('<I2I2', add, 3)
          local head = string.sub(add, 1, head_size)
          local body = string.sub(add, head_size + 1)
          local old_history = redis.call('GET', KEYS[n + i])
          if old_history and string.sub(old_history, 1, head_size) == head then
            body = string.sub(old_history, head_size + 1) .. body
          end
          local cut = hlen * point_size
          if #body > cut then
            body = string.sub(body, #body - cut + 1)
          end
          redis.call('SET', KEYS[n + i], head .. body)
        end
      end
      ranked[#ranked + 1] = struct.unpack('<d', scores, 8 * (i - 1) + 1)
      ranked[#ranked + 1] = ARGV[streams + i]
      if #ranked >= 1000 then
        redis.call('ZADD', KEYS[h + 1], unpack(ranked))
        ranked = {}
      end
    end
  else
    refused[#refused + 1] = i
  end
end
if #ranked > 0 then
  redis.call('ZADD', KEYS[h + 1], unpack(ranked))
end
if view then
  local first = streams + n
  for j = first + 1, first + n_alerts do
    redis.call('XADD', KEYS[h + 2], 'MAXLEN', '~', kept, '*', 'alert', ARGV[j])
  end
  for j = first + n_alerts + 1, #ARGV, 2 do
    local field = ARGV[j]
    if string.sub(field, 1, 1) == '=' then
      redis.call('HSET', KEYS[h + 3], string.sub(field, 2), ARGV[j + 1])
    else
      redis.call('HINCRBYFLOAT', KEYS[h + 3], field, ARGV[j + 1])
    end
  end
end
return refused
"""
_FENCED_SET_SHA = hashlib.sha1(_FENCED_SET.encode()).hexdigest()


class RedisStateStore:
    """States in Redis: one MGET per load, one fenced EVALSHA per save."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = validate_prefix(prefix)

    def _call(self, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except _TRANSIENT as exc:
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
        keys = _checked_keys(self.prefix, items)
        args: list[bytes | str | float | int] = [len(items), 0, ALERTS_KEPT, 0, b""]
        args += [blob for _, blob in items]
        if view is not None:
            streams = [stream for stream, _ in items]
            if view.history_length > 0:
                keys += [history_key(self.prefix, s) for s in streams]
                args += view.history
            keys += [scores_key(self.prefix), alerts_key(self.prefix), metrics_key(self.prefix)]
            args[1], args[3] = view.history_length, len(view.alerts)
            args[4] = np.asarray(view.scores, dtype="<f8").tobytes()
            args += [*streams, *view.alerts]
            for field, amount in view.metrics:
                args += [field, amount]
        refused = self._call(lambda: self._fenced_set(keys, args))
        results = [True] * len(items)
        for index in refused:
            results[int(index) - 1] = False
        return results

    def _fenced_set(self, keys: list[str], args: list[bytes | str | float | int]) -> list[int]:
        # The SHA is known locally, so the script is only sent when Redis lacks it
        # (first use, or after a restart / SCRIPT FLUSH).
        try:
            return self.client.evalsha(_FENCED_SET_SHA, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.client.script_load(_FENCED_SET)
            return self.client.evalsha(_FENCED_SET_SHA, len(keys), *keys, *args)

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


def connect_redis(url: str) -> redis.Redis:
    """A client for the state store: raw bytes, health checks, bounded waits.

    Retries are few and short on purpose: the worker has its own pause-and-retry loop
    around StoreUnavailable, and a long hidden retry would just stall a poll loop.
    """
    try:
        return redis.Redis.from_url(
            url,
            decode_responses=False,
            health_check_interval=15,
            socket_connect_timeout=3.0,
            socket_timeout=10.0,
            socket_keepalive=True,
            retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), retries=2),
        )
    except ValueError as exc:
        # The message never echoes the URL: it may carry a password.
        raise ValueError(f"invalid Redis URL: {exc}") from None
