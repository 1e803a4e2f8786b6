"""The Kafka side of the worker as two small interfaces and the record types they carry.

Every backend (kafka-python, confluent-kafka, the in-memory double for tests) implements
`EventSource` and `RecordSink`; the worker only ever sees these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, cast


class Record(NamedTuple):
    """One consumed record, independent of the client library.

    A named tuple (like kafka-python's own ConsumerRecord) because the worker builds one
    per event: a tuple is created several times faster than a frozen dataclass.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: int  # ms, the broker's or producer's record time


class RecordBatch:
    """A polled batch as columns, one list per field.

    The worker reads every record's key, value, partition and offset but needs a whole
    record object only for the few it rejects: building one object per record costs about
    as much as decoding it, at 100k records/s a visible share of the core. The client's
    own record objects stay in `raw`, and `record(i)` materialises one on demand.
    """

    __slots__ = (
        "_materialise",
        "keys",
        "offsets",
        "partitions",
        "raw",
        "timestamps",
        "topics",
        "values",
    )  # fmt: skip

    def __init__(
        self,
        topics: list[str],
        partitions: list[int],
        offsets: list[int],
        keys: list[bytes | None],
        values: list[bytes | None],
        timestamps: list[int],
        raw: Sequence[Any],
        materialise: Callable[[Any], Record],
    ) -> None:
        self.topics, self.partitions, self.offsets = topics, partitions, offsets
        self.keys, self.values, self.timestamps = keys, values, timestamps
        self.raw = raw
        self._materialise = materialise

    @classmethod
    def of(cls, records: Sequence[Record]) -> RecordBatch:
        """A batch of ready-made records (tests, and clients whose records are tuples)."""
        return cls(
            [r.topic for r in records],
            [r.partition for r in records],
            [r.offset for r in records],
            [r.key for r in records],
            [r.value for r in records],
            [r.timestamp for r in records],
            records,
            _same,
        )

    def __len__(self) -> int:
        return len(self.offsets)

    def record(self, i: int) -> Record:
        """The i-th record with its headers (for dead letters)."""
        return self._materialise(self.raw[i])

    def records(self) -> list[Record]:
        return [self._materialise(r) for r in self.raw]


def _same(record: Any) -> Record:
    return cast("Record", record)


class EventSource(Protocol):
    def poll(self, timeout_ms: int, max_records: int) -> RecordBatch: ...

    def on_assign(self, callback: PartitionsCallback) -> None:
        """Also call `callback` when a rebalance completes, with the new assignment (maybe
        empty)."""
        ...

    def on_revoke(self, callback: PartitionsCallback) -> None:
        """Also call `callback` (inside poll) when partitions are revoked or lost, before
        another member can take them."""
        ...

    def commit(self, offsets: dict[tuple[str, int], int]) -> None: ...

    def committed(self, partitions: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The group's committed next offsets of `partitions` (absent: none committed)."""
        ...

    def assignment(self) -> set[tuple[str, int]]: ...
    def close(self) -> None: ...

    def lag(self, positions: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        """Records behind the end of each partition after `positions` (next offsets), from
        what the client already knows (no extra round trip); partitions it cannot tell
        are left out. Only meaningful where the broker reports end offsets correctly."""
        ...


class RecordSink(Protocol):
    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> None:
        """Queue a record; `partition` None lets the key pick it (murmur2, as Java does)."""
        ...

    def flush(self) -> None: ...
    def close(self) -> None: ...


PartitionsCallback = Callable[[set[tuple[str, int]]], None]
