"""Kafka in and out behind two small interfaces, so the worker never names a client library.

`EventSource` is a consumer-group member that polls batches and commits explicit offsets;
`RecordSink` produces records and flushes. The kafka-python implementation is the default;
nothing here is specific to the local broker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from pipeline.kafka.base import PartitionsCallback, RecordBatch
from pipeline.settings import Settings

log = logging.getLogger(__name__)


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
