"""Create (and, for tests, delete) Vigil's Kafka topics before anything produces to them.

Why this exists rather than relying on auto-creation: Tansu auto-creates any topic a
producer writes to or a consumer subscribes to, with the broker's default partition count,
and it accepts names and partition counts real Kafka refuses ("bad name!", 0 partitions).
So topics are created explicitly, first, and names are checked here against Kafka's rules
so code that works on the local stack also works on a real cluster.

Written against kafka-python 3.x (dict-style `create_topics`, dict metadata results).
"""

from __future__ import annotations

import re
import time
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

_LEGAL_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


class TopicError(Exception):
    """A topic could not be validated, created or seen; the message is one line."""


class BrokerUnreachable(TopicError):
    """The broker did not answer (down, starting, or the network): worth waiting for,
    unlike a bad name or a refused creation."""


def check_topic_name(name: str) -> None:
    if not isinstance(name, str) or not _LEGAL_NAME.fullmatch(name) or name in (".", ".."):
        raise TopicError(
            f"invalid topic name {name!r}: use 1-249 characters from A-Z a-z 0-9 . _ -"
        )


def _spec(partitions: int, config: dict[str, str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"num_partitions": partitions}
    if config:
        spec["configs"] = config
    return spec


def _admin(bootstrap: str, security: dict[str, Any] | None, timeout_s: float) -> KafkaAdminClient:
    timeout_ms = max(int(timeout_s * 1000), 1)
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="vigil-topics",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
            **(security or {}),
        )
    except KafkaError as exc:
        raise BrokerUnreachable(f"cannot reach Kafka at {bootstrap}: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    """kafka-python messages embed whole request reprs; keep the first line, bounded."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _partition_counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition counts of the topics that exist with a leader for every partition."""
    counts = {}
    for topic in admin.describe_topics(names):
        partitions = topic.get("partitions") or []
        ready = all(p.get("error_code", 0) == 0 and p.get("leader_id", -1) >= 0 for p in partitions)
        if topic.get("error_code", 0) == 0 and partitions and ready:
            counts[topic["name"]] = len(partitions)
    return counts


def ensure_topics(
    bootstrap: str,
    topics: dict[str, int],
    security: dict[str, Any] | None = None,
    timeout_s: float = 15.0,
    configs: dict[str, dict[str, str]] | None = None,
) -> dict[str, int]:
    """Create the missing topics with the given partition counts and wait until metadata
    shows all of them ready. Existing topics are left alone whatever their partition count
    (the operator's choice); the actual counts are returned so the caller can warn.
    `security` takes kafka-python keyword names, as `Settings.kafka_security()` returns;
    `configs` adds topic settings (e.g. cleanup.policy) to topics it creates.
    """
    for name, partitions in topics.items():
        check_topic_name(name)
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise TopicError(f"topic {name}: partition count must be a positive integer")
    if not topics:
        return {}
    admin = _admin(bootstrap, security, timeout_s)
    try:
        existing = set(admin.list_topics())
        missing = {name: n for name, n in topics.items() if name not in existing}
        if missing:
            result = admin.create_topics(
                {name: _spec(n, (configs or {}).get(name)) for name, n in missing.items()},
                timeout_ms=int(timeout_s * 1000),
                raise_errors=False,
            )
            for topic in result["topics"]:
                # "Already exists" is fine: another process won the race to create it.
                if topic["error_code"] not in (0, TopicAlreadyExistsError.errno):
                    reason = topic.get("error_message") or f"error code {topic['error_code']}"
                    raise TopicError(f"cannot create topic {topic['name']}: {reason}")
        return _wait_for(admin, list(topics), timeout_s)
    except KafkaError as exc:
        raise BrokerUnreachable(f"Kafka at {bootstrap}: {_describe(exc)}") from None
    finally:
        admin.close()


def _wait_for(admin: KafkaAdminClient, names: list[str], timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        counts = _partition_counts(admin, names)
        if len(counts) == len(names):
            return counts
        if time.monotonic() >= deadline:
            pending = sorted(set(names) - set(counts))
            raise TopicError(f"topics not ready after {timeout_s:g} s: {', '.join(pending)}")
        time.sleep(0.05)


def delete_topics(
    bootstrap: str,
    names: list[str],
    security: dict[str, Any] | None = None,
    timeout_s: float = 15.0,
) -> None:
    """Delete topics (unknown ones are fine) and wait until metadata no longer lists them."""
    for name in names:
        check_topic_name(name)
    if not names:
        return
    admin = _admin(bootstrap, security, timeout_s)
    try:
        result = admin.delete_topics(names, timeout_ms=int(timeout_s * 1000), raise_errors=False)
        for topic in result["topics"]:
            code = topic["error_code"]
            if code not in (0, UnknownTopicOrPartitionError.errno):
                reason = topic.get("error_message") or f"error code {code}"
                raise TopicError(f"cannot delete topic {topic['name']}: {reason}")
        deadline = time.monotonic() + timeout_s
        while set(names) & set(admin.list_topics()):
            if time.monotonic() >= deadline:
                raise TopicError(f"topics still listed after {timeout_s:g} s of deleting")
            time.sleep(0.05)
    except KafkaError as exc:
        raise TopicError(f"Kafka at {bootstrap}: {_describe(exc)}") from None
    finally:
        admin.close()
