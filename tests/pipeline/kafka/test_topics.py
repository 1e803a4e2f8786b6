"""Topic creation against the session's real broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaAdminClient

from pipeline.kafka.topics import TopicError, delete_topics, ensure_topics
from pipeline.local.stack import StackInfo, free_port


@pytest.fixture
def admin(stack: StackInfo) -> Iterator[KafkaAdminClient]:
    """An independent view of the broker's metadata, to check what ensure_topics did."""
    client = KafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
    yield client
    client.close()


def _partitions(admin: KafkaAdminClient, topic: str) -> int:
    (described,) = admin.describe_topics([topic])
    assert described["error_code"] == 0, described
    return len(described["partitions"])


def test_creates_topics_with_the_requested_partition_counts(
    stack: StackInfo, admin: KafkaAdminClient, topic_names: Callable[[str], str]
) -> None:
    events, alerts = topic_names("events"), topic_names("alerts")
    counts = ensure_topics(stack.bootstrap_servers, {events: 3, alerts: 1})
    assert counts == {events: 3, alerts: 1}
    assert _partitions(admin, events) == 3
    assert _partitions(admin, alerts) == 1


def test_is_idempotent_and_leaves_existing_topics_alone(
    stack: StackInfo, admin: KafkaAdminClient, topic_names: Callable[[str], str]
) -> None:
    events, extra = topic_names("events"), topic_names("extra")
    ensure_topics(stack.bootstrap_servers, {events: 2})
    counts = ensure_topics(stack.bootstrap_servers, {events: 5, extra: 4})
    assert counts == {events: 2, extra: 4}  # the existing topic keeps its 2 partitions
    assert _partitions(admin, events) == 2
    assert ensure_topics(stack.bootstrap_servers, {events: 2, extra: 4}) == counts


def test_accepts_settings_style_security_options(
    stack: StackInfo, topic_names: Callable[[str], str]
) -> None:
    topic = topic_names("events")
    assert ensure_topics(stack.bootstrap_servers, {topic: 1}, {"security_protocol": "PLAINTEXT"})


@pytest.mark.parametrize(
    ("topics", "expected"),
    [
        ({"bad name!": 1}, "invalid topic name 'bad name!'"),
        ({"": 1}, "invalid topic name ''"),
        ({"..": 1}, "invalid topic name '..'"),
        ({"x" * 250: 1}, "invalid topic name"),
        ({"vigil.events": 0}, "topic vigil.events: partition count must be a positive integer"),
        ({"vigil.events": True}, "topic vigil.events: partition count must be"),
    ],
)
def test_refuses_what_real_kafka_would_refuse(
    stack: StackInfo, admin: KafkaAdminClient, topics: dict[str, int], expected: str
) -> None:
    # Tansu itself would accept all of these; the check is ours.
    with pytest.raises(TopicError) as exc:
        ensure_topics(stack.bootstrap_servers, topics)
    assert str(exc.value).startswith(expected)
    assert "\n" not in str(exc.value)
    assert not set(topics) & set(admin.list_topics())


def test_unreachable_broker_is_a_one_line_error() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(TopicError) as exc:
        ensure_topics(address, {"vigil.events": 1}, timeout_s=0.5)
    assert str(exc.value).startswith(f"cannot reach Kafka at {address}")
    assert "\n" not in str(exc.value)


def test_delete_topics(
    stack: StackInfo, admin: KafkaAdminClient, topic_names: Callable[[str], str]
) -> None:
    keep, drop, never = topic_names("keep"), topic_names("drop"), topic_names("never")
    ensure_topics(stack.bootstrap_servers, {keep: 1, drop: 2})
    delete_topics(stack.bootstrap_servers, [drop, never])  # unknown topics are fine
    listed = set(admin.list_topics())
    assert keep in listed
    assert drop not in listed
