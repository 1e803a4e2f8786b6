"""The backend switch: settings.kafka_backend picks the client; nothing else names one.

Each backend is imported only when it is chosen, so a deployment that runs one client
never loads the other (confluent-kafka pulls in librdkafka at import).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pipeline.kafka.base import EventSource, PartitionsCallback, RecordSink
from pipeline.settings import Settings


def make_source(
    settings: Settings,
    topics: Sequence[str],
    on_assign: PartitionsCallback | None = None,
    on_revoke: PartitionsCallback | None = None,
    client_id: str = "vigil-worker",
) -> EventSource:
    """The consumer of the backend `settings.kafka_backend` names."""
    if settings.kafka_backend == "confluent":
        from pipeline.kafka.confluent import ConfluentSource

        return ConfluentSource(settings, topics, on_assign, on_revoke, client_id)
    from pipeline.kafka.kafka_python import KafkaPythonSource

    return KafkaPythonSource(settings, topics, on_assign, on_revoke, client_id)


def make_sink(settings: Settings, client_id: str = "vigil-producer") -> RecordSink:
    """The producer of the backend `settings.kafka_backend` names."""
    if settings.kafka_backend == "confluent":
        from pipeline.kafka.confluent import ConfluentSink

        return ConfluentSink(settings, client_id)
    from pipeline.kafka.kafka_python import KafkaPythonSink

    return KafkaPythonSink(settings, client_id)


def read_partitions(
    settings: Settings, topic: str, partitions: Sequence[int]
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """Every (key, value) of `partitions` from the start to their current end, outside any
    group (restoring from a changelog). kafka-python on either backend: it is rare."""
    from pipeline.kafka.kafka_python import read_partitions as read

    return read(settings, topic, partitions)
