"""The confluent-kafka (librdkafka) implementation of `EventSource` and `RecordSink`.

Why a second backend: librdkafka fetches and decodes in its own C threads, so a worker
spends its core on the detector rather than on the Kafka protocol (about 30x kafka-python's
consume rate against the local broker). It behaves the same way towards the worker: no
auto-commit, offsets committed only by the worker, `earliest` when nothing is committed,
and `close` leaves the group so the partitions move at once.

`make_source` / `make_sink` pick the backend named by `settings.kafka_backend`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from pipeline.kafka.base import PartitionsCallback, Record, RecordBatch
from pipeline.settings import Settings

log = logging.getLogger(__name__)

# Errors a consumer sees while the broker restarts or the group rebalances; librdkafka
# recovers from them by itself, so they are logged, not raised.
_TRANSIENT_CODES = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._MAX_POLL_EXCEEDED,
        KafkaError._TIMED_OUT,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    }
)


class DeliveryError(Exception):
    """A produced record was not acknowledged by the broker (after librdkafka's retries)."""


# kafka-python's keyword names (what `Settings.kafka_security` returns, the one place the
# security settings are read) -> librdkafka's property names.
_LIBRDKAFKA_NAMES = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
}


def security_config(settings: Settings) -> dict[str, str]:
    """Security settings in librdkafka's property names (the password stays out of logs:
    only the returned dict carries it, and nothing here logs the dict)."""
    config = {_LIBRDKAFKA_NAMES[k]: str(v) for k, v in settings.kafka_security().items()}
    config["security.protocol"] = config["security.protocol"].lower()
    return config


# librdkafka's own log lines go through Python logging (not straight to stderr), so the
# CLI's log level applies to them like to everything else.
_LIBRDKAFKA_LOG = logging.getLogger("confluent_kafka.librdkafka")


def _log_client_error(error: KafkaError) -> None:
    """librdkafka's global error callback: it reconnects by itself, so this only informs."""
    if error.fatal():
        log.error("Kafka client fatal error: %s", error)
    else:
        log.warning("Kafka client error: %s", error)


def _record(m: Message) -> Record:
    return Record(
        m.topic(),  # type: ignore[arg-type]
        m.partition(),  # type: ignore[arg-type]
        m.offset(),  # type: ignore[arg-type]
        m.key(),
        m.value(),
        m.headers() or [],  # type: ignore[arg-type]
        m.timestamp()[1],
    )


def _partitions(tps: Sequence[TopicPartition]) -> set[tuple[str, int]]:
    return {(tp.topic, tp.partition) for tp in tps}


class ConfluentSource:
    """A librdkafka consumer in group `settings.group_id`, committing only explicitly."""

    def __init__(
        self,
        settings: Settings,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
        client_id: str = "vigil-worker",
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        """`overrides`: extra librdkafka properties (tests use max.poll.interval.ms)."""
        config: dict[str, Any] = {
            "bootstrap.servers": settings.kafka_bootstrap(),
            "group.id": settings.group_id,
            "client.id": client_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": settings.session_timeout_ms,
            "heartbeat.interval.ms": max(500, settings.session_timeout_ms // 3),
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
            # Keep fetching ahead while the worker processes a batch: a deep local queue,
            # and no half-second back-off after an empty fetch at the end of a partition.
            # A short fetch wait: a broker that holds a fetch for the whole wait although
            # records arrived (Tansu, the local broker, does) adds up to that wait to
            # every event's latency; Apache Kafka answers as soon as one byte is there,
            # so for it this only sets how often an idle worker asks.
            "queued.min.messages": 500_000,
            "fetch.error.backoff.ms": 20,
            "fetch.wait.max.ms": 10,
            "error_cb": _log_client_error,
            "logger": _LIBRDKAFKA_LOG,
            **security_config(settings),
            **(overrides or {}),
        }
        self._assign_callbacks = [] if on_assign is None else [on_assign]
        self._revoke_callbacks = [] if on_revoke is None else [on_revoke]
        self._consumer = Consumer(config)
        self._consumer.subscribe(
            list(topics),
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._revoked,
        )

    def _assigned(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        for callback in self._assign_callbacks:
            callback(_partitions(tps))

    def _revoked(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        partitions = _partitions(tps)
        for callback in self._revoke_callbacks:
            callback(partitions)

    def on_assign(self, callback: PartitionsCallback) -> None:
        self._assign_callbacks.append(callback)

    def on_revoke(self, callback: PartitionsCallback) -> None:
        self._revoke_callbacks.append(callback)

    def poll(self, timeout_ms: int, max_records: int) -> RecordBatch:
        """Return what is already fetched at once; wait up to timeout_ms only when nothing
        is (a batch consume with a timeout would wait for a full batch every time)."""
        messages = self._consumer.consume(max_records, 0)
        if not messages:
            first = self._consumer.poll(timeout_ms / 1000.0)
            if first is None:
                return RecordBatch([], [], [], [], [], [], [], _record)
            messages = [first]
            if max_records > 1:
                messages += self._consumer.consume(max_records - 1, 0)
        if any([m.error() is not None for m in messages]):
            for m in messages:
                if m.error() is not None:
                    self._message_error(m)
            messages = [m for m in messages if m.error() is None]
        # One pass per column: a list comprehension of C method calls, no object per record.
        return RecordBatch(
            [m.topic() for m in messages],  # type: ignore[misc]
            [m.partition() for m in messages],  # type: ignore[misc]
            [m.offset() for m in messages],  # type: ignore[misc]
            [m.key() for m in messages],
            [m.value() for m in messages],
            [m.timestamp()[1] for m in messages],
            messages,
            _record,
        )

    def _message_error(self, message: Message) -> None:
        error = message.error()
        assert error is not None
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal() or error.code() not in _TRANSIENT_CODES:
            raise KafkaException(error)
        log.warning("Kafka consumer: %s", error)

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit synchronously; raise if the group refused any partition (e.g. it moved)."""
        result = self._consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
            asynchronous=False,
        )
        for tp in result or ():
            if tp.error is not None:
                raise KafkaException(tp.error)

    def committed(self, partitions: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        found = self._consumer.committed([TopicPartition(t, p) for t, p in partitions], 30)
        return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}

    def assignment(self) -> set[tuple[str, int]]:
        return _partitions(self._consumer.assignment())

    def lag(self, positions: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        out = {}
        for (topic, partition), position in positions.items():
            try:
                _, end = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True
                )
            except KafkaException:
                continue
            if end is not None and end >= 0:
                out[(topic, partition)] = max(0, end - position)
        return out

    def close(self) -> None:
        """Leave the group now (auto-commit is off, so nothing is committed here)."""
        self._consumer.close()


class ConfluentSink:
    """A librdkafka producer; `flush` waits for every acknowledgement (acks=all)."""

    def __init__(self, settings: Settings, client_id: str = "vigil-producer") -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap(),
                "client.id": client_id,
                "acks": "all",
                "linger.ms": 5,
                "message.max.bytes": max(1024 * 1024, settings.max_message_bytes * 2),
                # The partition Java clients and kafka-python pick for a key: a key-less
                # event the worker re-publishes keyed must land where its stream's are.
                "partitioner": "murmur2_random",
                "error_cb": _log_client_error,
                "logger": _LIBRDKAFKA_LOG,
                **security_config(settings),
            }
        )
        self._errors: list[str] = []

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._errors.append(f"{message.topic()}: {error.str()}")

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> None:
        where = -1 if partition is None else partition  # -1: the partitioner picks
        while True:
            try:
                self._producer.produce(
                    topic, value, key, partition=where, headers=list(headers) or None,
                    on_delivery=self._delivered,
                )  # fmt: skip
                return
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self._producer.poll(0.1)

    def flush(self) -> None:
        """Block until everything sent is acknowledged; raise if any write failed."""
        remaining = self._producer.flush()
        errors, self._errors = self._errors, []
        if errors:
            raise DeliveryError(f"{len(errors)} record(s) not delivered, first: {errors[0]}")
        if remaining:
            raise DeliveryError(f"{remaining} record(s) still unacknowledged after flush")

    def close(self) -> None:
        """Deliver what is queued (up to 10 s), then stop librdkafka's threads now rather
        than whenever the garbage collector finds this object."""
        self._producer.flush(10)
        self._producer.close()
