"""Kafka in and out behind two small interfaces, so the worker never names a client library.

`EventSource` is a consumer-group member that polls batches and commits explicit offsets;
`RecordSink` produces records and flushes. The kafka-python implementation is the default;
nothing here is specific to the local broker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, cast

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from pipeline.settings import Settings

log = logging.getLogger(__name__)


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


PartitionsCallback = Callable[[set[tuple[str, int]]], None]


class EventSource(Protocol):
    def poll(self, timeout_ms: int, max_records: int) -> RecordBatch: ...

    def on_revoke(self, callback: PartitionsCallback) -> None:
        """Also call `callback` (inside poll) when partitions are revoked or lost, before
        another member can take them."""
        ...

    def commit(self, offsets: dict[tuple[str, int], int]) -> None: ...
    def assignment(self) -> set[tuple[str, int]]: ...
    def close(self) -> None: ...

    def lag(self, positions: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        """Records behind the end of each partition after `positions` (next offsets), from
        what the client already knows (no extra round trip); partitions it cannot tell
        are left out. Only meaningful where the broker reports end offsets correctly."""
        ...


class RecordSink(Protocol):
    def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class _Listener(ConsumerRebalanceListener):
    def __init__(
        self, on_assign: PartitionsCallback | None, on_revoke: PartitionsCallback | None
    ) -> None:
        self._on_assign = on_assign
        self.revoke_callbacks = [] if on_revoke is None else [on_revoke]

    def on_partitions_revoked(self, revoked: Any) -> None:
        partitions = {(tp.topic, tp.partition) for tp in revoked}
        for callback in self.revoke_callbacks:
            callback(partitions)

    def on_partitions_assigned(self, assigned: Any) -> None:
        if self._on_assign is not None:
            self._on_assign({(tp.topic, tp.partition) for tp in assigned})


class KafkaPythonSource:
    """A kafka-python consumer in group `settings.group_id`, committing only explicitly."""

    def __init__(
        self,
        settings: Settings,
        topics: Sequence[str],
        on_assign: Callable[[set[tuple[str, int]]], None] | None = None,
        on_revoke: Callable[[set[tuple[str, int]]], None] | None = None,
        client_id: str = "vigil-worker",
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        """`overrides`: extra KafkaConsumer options (tests use max_poll_interval_ms)."""
        self._consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap().split(","),
            group_id=settings.group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(500, settings.session_timeout_ms // 3),
            max_poll_records=settings.max_poll_records,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            **settings.kafka_security(),
            **(overrides or {}),
        )
        self._listener = _Listener(on_assign, on_revoke)
        self._consumer.subscribe(list(topics), listener=self._listener)

    def on_revoke(self, callback: PartitionsCallback) -> None:
        self._listener.revoke_callbacks.append(callback)

    def poll(self, timeout_ms: int, max_records: int) -> RecordBatch:
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        records: list[Any] = []
        for tp_records in batches.values():
            # kafka-python's ConsumerRecord has every field of Record (topic, partition,
            # offset, key, value, headers, timestamp): passed through as is.
            records.extend(tp_records)
        return RecordBatch.of(records)

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        from kafka.structs import OffsetAndMetadata

        self._consumer.commit(
            {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        )

    def assignment(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def lag(self, positions: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        out = {}
        assigned = self.assignment()
        for (topic, partition), position in positions.items():
            if (topic, partition) not in assigned:
                continue
            end = self._consumer.highwater(TopicPartition(topic, partition))
            if end is not None:
                out[(topic, partition)] = max(0, end - position)
        return out

    def close(self) -> None:
        """Leave the group now, so the partitions move to the other workers at once."""
        self._consumer.close(autocommit=False)


class KafkaPythonSink:
    """A producer that waits for every write (acks=all) when flushed."""

    def __init__(self, settings: Settings, client_id: str = "vigil-producer") -> None:
        self._producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap().split(","),
            client_id=client_id,
            acks="all",
            linger_ms=5,
            batch_size=256 * 1024,
            max_request_size=max(1024 * 1024, settings.max_message_bytes * 2),
            **settings.kafka_security(),
        )
        self._pending: list[Any] = []

    def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        self._pending.append(
            self._producer.send(topic, key=key, value=value, headers=list(headers) or None)
        )

    def flush(self) -> None:
        """Block until everything sent is acknowledged; raise if any write failed."""
        self._producer.flush()
        pending, self._pending = self._pending, []
        for future in pending:
            future.get(timeout=30)

    def close(self) -> None:
        self._producer.close(timeout=10)
