"""The per-stream state store: its interface, key naming and the fencing rule.

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
import struct
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from pipeline.contracts.ids import stream_id_problem

HEADER = struct.Struct("<2sHiq")
"""magic b"VG", layout version, partition of the last applied event, its offset."""
MAGIC = b"VG"
MAX_OFFSET = 2**53 - 1
"""Lua numbers are doubles: offsets above this would compare wrongly inside Redis."""


class StateLost(Exception):
    """Redis holds less than this client saw it hold: it restarted empty, was restored
    from an older snapshot, or was flushed (the generation counter went back).

    Raised once per loss, after the call completed: the store then trusts the new
    generation, and the worker restores the states from the changelog. `written` holds a
    save's results (the save itself did happen).
    """

    def __init__(self, seen: int, found: int, written: list[bool] | None = None) -> None:
        super().__init__(f"Redis's generation went back from {seen} to {found}")
        self.seen, self.found, self.written = seen, found, written


class Generation:
    """This client's save counter in the store, as last seen.

    Each client (a worker process) has its own field in the generations hash; every save
    increments it in the same atomic call as its writes, so it goes back (or vanishes)
    only when Redis forgets writes - other clients never touch it. A load reads it in the
    same round trip as the states, so a loss is seen before a lost state would be taken
    for a new stream. (A fresh client has seen nothing: the worker compares the saved
    offsets of partitions it is given with Kafka's committed ones instead.)
    """

    def __init__(self) -> None:
        self.client = uuid.uuid4().hex
        self.seen = 0

    def check(self, found: int, written: list[bool] | None = None) -> None:
        seen, self.seen = self.seen, found
        if found < seen:
            raise StateLost(seen, found, written)


class StoreUnavailable(Exception):
    """Redis cannot be reached or cannot accept writes right now.

    The worker pauses and retries the batch without committing Kafka offsets.
    """


def validate_stream(stream: str) -> str:
    """Refuse stream ids that cannot be stored safely (`contracts.ids`); return it unchanged."""
    problem = stream_id_problem(stream) if isinstance(stream, str) else "must be a string"
    if problem is not None:
        raise ValueError(f"stream id {problem}")
    return stream


@functools.lru_cache(maxsize=64)
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
    """Recent values, predictions and scores of a stream, for the API (contracts.history)."""
    return f"{validate_prefix(prefix)}:h:{{{_escape(validate_stream(stream))}}}"


def scores_key(prefix: str) -> str:
    return f"{validate_prefix(prefix)}:scores"


def snapshot_key(prefix: str, snapshot: str) -> str:
    """A copy of the scores ranking that the API pages with a cursor (expires)."""
    return f"{validate_prefix(prefix)}:snap:{snapshot}"


def alerts_key(prefix: str) -> str:
    return f"{validate_prefix(prefix)}:alerts"


def metrics_key(prefix: str) -> str:
    """The workers' counters (hash), read by the API's /metrics."""
    return f"{validate_prefix(prefix)}:metrics"


def committed_field(topic: str, partition: int) -> str:
    """Metrics-hash field of the next offset of a partition whose states are saved (the
    last checkpoint's), written in the same atomic save as the states."""
    return f"committed:{topic}:{partition}"


def generations_key(prefix: str) -> str:
    """Hash of every client's save counter (`Generation`)."""
    return f"{validate_prefix(prefix)}:generations"


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
    """The fencing rule; `fenced_save.lua` is the same rule in Lua and must stay in step."""
    if stored is None or stored == new:
        return True
    if len(stored) < HEADER.size or stored[:2] != MAGIC:
        return True  # an unreadable stored state must not wedge its stream forever
    _, _, old_partition, old_offset = HEADER.unpack_from(stored)
    _, _, new_partition, new_offset = HEADER.unpack_from(new)
    return old_partition != new_partition or old_offset < new_offset


def checked_keys(prefix: str, items: Sequence[tuple[str, bytes]]) -> list[str]:
    """Validate a whole batch before any write, so a bad item never half-applies it."""
    keys = []
    for stream, blob in items:
        keys.append(state_key(prefix, stream))
        check_header(blob)
    return keys


@dataclass(frozen=True)
class BatchView:
    """The API's view of a saved batch, aligned with the saved items (contracts.history)."""

    history: Sequence[bytes]
    scores: Sequence[float]
    alerts: Sequence[bytes] = ()
    history_length: int = 100
    # ("=name", value) sets, ("^name", value) sets if larger, the rest increment
    metrics: Sequence[tuple[str, float | str]] = ()


def split_save(
    items: Sequence[tuple[str, bytes]], view: BatchView | None, size: int
) -> Iterator[tuple[Sequence[tuple[str, bytes]], BatchView | None]]:
    """A save as parts of at most `size` items, each with its share of the view; the
    view's alerts and counters go with the last part (one part if there are no items)."""
    for start in range(0, max(len(items), 1), size):
        end = start + size
        part = view
        if view is not None:
            last = end >= len(items)
            part = BatchView(
                view.history[start:end], view.scores[start:end],
                view.alerts if last else (), view.history_length,
                view.metrics if last else (),
            )  # fmt: skip
        yield items[start:end], part


class StateStore(Protocol):
    """Batched per-stream state storage.

    Every call takes a whole batch and answers in input order, so an implementation is
    free to split the batch however its backend needs: the Redis Cluster store
    (`pipeline.state.cluster`) groups the keys by hash slot (`state_key` puts each stream
    in its own hash tag), sends one MGET / fenced save per slot, pipelined per node, and
    reassembles the answers in order — without any change to callers.
    """

    generation: Generation

    def load(self, streams: Sequence[str]) -> list[bytes | None]:
        """Stored blobs, None for streams never saved. Raises StateLost (once) if the
        store forgot writes since this client last looked."""
        ...

    def save(self, items: Sequence[tuple[str, bytes]], view: BatchView | None = None) -> list[bool]:
        """Write (stream, blob) pairs in order; True = written, False = refused by fencing.

        With a view, the same call appends each accepted stream's history entry, updates
        its latest score and adds the batch's alerts (what the API shows). Raises
        StateLost (once, with the results) if the store forgot writes.
        """
        ...

    def save_peaks(self, peaks: dict[tuple[int, str], float], ttl_s: int) -> None:
        """Keep each (bucket start ms, stream)'s largest score (`pipeline.state.peaks`)."""
        ...

    def committed_marks(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """Per partition, the next offset its saved states include (`committed_field`);
        partitions without one are left out."""
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

    def delete_meta(self, *names: str) -> None:
        """Remove values written by set_meta (absent ones are fine)."""
        ...
