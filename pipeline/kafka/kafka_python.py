"""Kafka in and out behind two small interfaces, so the worker never names a client library.

`EventSource` is a consumer-group member that polls batches and commits explicit offsets;
`RecordSink` produces records and flushes. The kafka-python implementation is the default;
nothing here is specific to the local broker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.future import Future

from pipeline.kafka.base import PartitionsCallback, RecordBatch
from pipeline.settings import Settings

log = logging.getLogger(__name__)


class _Listener(AsyncConsumerRebalanceListener):
    """Runs the worker's rebalance callbacks on a helper thread while the client awaits them.

    kafka-python 3 calls rebalance listeners on its IO thread: the thread that sends
    heartbeats and that every blocking client call (`commit` included) waits on. A save to
    Redis there would stop the heartbeats for as long as Redis is slow or away, and a
    commit there fails ("Cannot block on net.run() from the IO thread itself"), so a
    graceful handover replayed up to a checkpoint interval. As an async listener, the IO
    loop awaits a future instead, heartbeating meanwhile; the callbacks run on a helper
    thread, where `commit` works as on the worker's thread (the worker's thread is inside
    `poll` and waits for the rebalance to finish, so it touches nothing meanwhile).
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        on_assign: PartitionsCallback | None,
        on_revoke: PartitionsCallback | None,
    ) -> None:
        self._consumer = consumer
        self.assign_callbacks = [] if on_assign is None else [on_assign]
        self.revoke_callbacks = [] if on_revoke is None else [on_revoke]

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._off_loop(self.revoke_callbacks, revoked)

    async def on_partitions_lost(self, lost: Any) -> None:
        # The saves that follow are fenced: a newer owner's states are never overwritten.
        await self._off_loop(self.revoke_callbacks, lost)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._off_loop(self.assign_callbacks, assigned)

    async def _off_loop(self, callbacks: list[PartitionsCallback], tps: Any) -> None:
        if not callbacks:
            return
        partitions = {(tp.topic, tp.partition) for tp in tps}
        done = Future()
        # The client's loop, to resolve the future from the helper thread with a wake-up
        # (a private attribute: tests/pipeline/worker/test_rebalance.py guards it).
        loop = self._consumer._net

        def run() -> None:
            error: BaseException | None = None
            try:
                for callback in callbacks:
                    callback(partitions)
            except BaseException as exc:  # re-raised by the client from poll
                error = exc

            async def resolve() -> None:
                if error is None:
                    done.success(None)
                else:
                    done.failure(error)

            loop.call_soon_threadsafe(resolve)

        threading.Thread(target=run, name="vigil-rebalance", daemon=True).start()
        await done


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
        self._listener = _Listener(self._consumer, on_assign, on_revoke)
        self._consumer.subscribe(list(topics), listener=self._listener)

    def on_assign(self, callback: PartitionsCallback) -> None:
        self._listener.assign_callbacks.append(callback)

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

    def committed(self, partitions: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        found = {tp: self._consumer.committed(TopicPartition(*tp)) for tp in partitions}
        return {tp: offset for tp, offset in found.items() if offset is not None}

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


def read_partitions(
    settings: Settings, topic: str, partitions: Sequence[int]
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record of `partitions`, from the start to their end now.

    Outside any group: restoring state reads a changelog; it is rare and not timed."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap().split(","),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        **settings.kafka_security(),
    )
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > consumer.position(tp)}
        while pending:
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for record in records:
                    yield record.key, record.value
                if consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        consumer.close(autocommit=False)


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
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> None:
        future = self._producer.send(
            topic, key=key, value=value, headers=list(headers) or None, partition=partition
        )
        self._pending.append(future)

    def flush(self) -> None:
        """Block until everything sent is acknowledged; raise if any write failed."""
        self._producer.flush()
        pending, self._pending = self._pending, []
        for future in pending:
            future.get(timeout=30)

    def close(self) -> None:
        self._producer.close(timeout=10)
