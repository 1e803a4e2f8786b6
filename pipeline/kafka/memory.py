"""An in-memory Kafka: topics, partitions, offsets, group commits and rebalances, no broker.

For tests of worker logic that is not about Kafka itself (decoding, rounds, alerts, the
checkpoint order, model swaps), as Bytewax's ``testing.py`` does for its dataflows: a
`MemoryBroker` holds the topics; `MemorySource` and `MemorySink` implement `EventSource`
and `RecordSink` against it. What the worker relies on behaves as Kafka's does:

- a record's partition is chosen from its key (the same key, the same partition), and
  offsets grow by one per partition from 0;
- members of a group share the topic's partitions; when a member joins or leaves, each
  member sees the change at its next poll: first the revoke callback for what it loses
  (inside poll, as with a real client), and a partition is handed to its new owner only
  once the old one has let it go;
- a newly assigned partition is read from the group's committed offset (or from the
  start); a commit of a partition the member no longer owns fails, like Kafka's
  CommitFailedError after a rebalance;
- `MemorySource.close` leaves the group without a revoke callback: whatever the worker
  did not save and commit before is read again by the partition's next owner, as after
  a killed process.

The real backends are tested against a real broker (`tests/pipeline/kafka`), and the
reliability suite runs the worker against one; this double never replaces those.
"""

from __future__ import annotations

import itertools
import threading
import zlib
from collections.abc import Sequence

from pipeline.kafka.base import PartitionsCallback, Record, RecordBatch

TopicPartition = tuple[str, int]


class CommitFailed(Exception):
    """A commit of partitions this member does not own (it lost them in a rebalance)."""


class MemoryBroker:
    """Topics of partitioned records, and each group's members and committed offsets."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._arrived = threading.Condition(self._lock)  # notified on every produce
        self._partitions: dict[str, list[list[Record]]] = {}
        self._committed: dict[tuple[str, TopicPartition], int] = {}
        self._members: dict[str, list[MemorySource]] = {}
        self._owner: dict[tuple[str, TopicPartition], MemorySource] = {}
        self._clock = itertools.count(1)

    # --- topics -------------------------------------------------------------------
    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Create ``topic`` (an existing topic keeps its partitions, as with Kafka)."""
        with self._lock:
            self._partitions.setdefault(topic, [[] for _ in range(partitions)])

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> Record:
        """Append one record (creating a one-partition topic if needed); return it."""
        with self._lock:
            self.create_topic(topic)
            parts = self._partitions[topic]
            if partition is None:
                partition = zlib.crc32(key) % len(parts) if key else next(self._clock) % len(parts)
            log = parts[partition]
            record = Record(topic, partition, len(log), key, value, list(headers), 0)
            log.append(record)
            self._arrived.notify_all()
            return record

    def produce_all(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> int:
        """Append (key, value) pairs in order; returns how many."""
        for key, value in records:
            self.produce(topic, key, value)
        return len(records)

    def records(self, topic: str) -> list[Record]:
        """Every record of ``topic``, partition by partition, each in offset order."""
        with self._lock:
            return [r for log in self._partitions.get(topic, []) for r in log]

    def partitions(self, topic: str) -> int:
        with self._lock:
            return len(self._partitions.get(topic, []))

    def end_offset(self, tp: TopicPartition) -> int:
        with self._lock:
            parts = self._partitions.get(tp[0], [])
            return len(parts[tp[1]]) if tp[1] < len(parts) else 0

    def committed(self, group: str, tp: TopicPartition) -> int | None:
        """The group's committed (next) offset of a partition, or None."""
        with self._lock:
            return self._committed.get((group, tp))

    # --- groups -------------------------------------------------------------------
    def source(self, topics: Sequence[str], group: str = "vigil") -> MemorySource:
        """A new member of ``group`` reading ``topics``."""
        return MemorySource(self, list(topics), group)

    def sink(self) -> MemorySink:
        return MemorySink(self)

    def _join(self, member: MemorySource) -> None:
        with self._lock:
            self._members.setdefault(member.group, []).append(member)

    def _leave(self, member: MemorySource) -> None:
        with self._lock:
            members = self._members.get(member.group, [])
            if member in members:
                members.remove(member)
            for key, owner in list(self._owner.items()):
                if owner is member:
                    del self._owner[key]

    def _target(self, member: MemorySource) -> set[TopicPartition]:
        """The partitions the group's current membership gives ``member`` (round robin)."""
        members = self._members.get(member.group, [])
        if member not in members:
            return set()
        topics = sorted({t for m in members for t in m.topics})
        every = [(t, p) for t in topics for p in range(self.partitions(t))]
        mine = members.index(member)
        return {tp for i, tp in enumerate(every) if i % len(members) == mine}

    def _commit(self, member: MemorySource, offsets: dict[TopicPartition, int]) -> None:
        with self._lock:
            lost = [tp for tp in offsets if self._owner.get((member.group, tp)) is not member]
            if lost:
                raise CommitFailed(f"partitions {sorted(lost)} are no longer assigned")
            for tp, offset in offsets.items():
                self._committed[(member.group, tp)] = offset


class MemorySource:
    """A consumer-group member on a `MemoryBroker` (implements `EventSource`)."""

    def __init__(self, broker: MemoryBroker, topics: list[str], group: str) -> None:
        self.broker = broker
        self.topics = topics
        self.group = group
        self.closed = False
        self._owned: set[TopicPartition] = set()
        self._position: dict[TopicPartition, int] = {}
        self._on_revoke: list[PartitionsCallback] = []
        self._on_assign: list[PartitionsCallback] = []
        self._rebalanced = False  # the first poll completes the join, as with Kafka
        broker._join(self)

    def on_revoke(self, callback: PartitionsCallback) -> None:
        self._on_revoke.append(callback)

    def on_assign(self, callback: PartitionsCallback) -> None:
        """Also call `callback` with the whole new assignment (maybe empty) each time a
        rebalance changes it, and after the first poll."""
        self._on_assign.append(callback)

    def _rebalance(self) -> None:
        broker = self.broker
        with broker._lock:
            target = broker._target(self)
            lost = self._owned - target
        if lost:
            for callback in self._on_revoke:
                callback(lost)
            with broker._lock:
                for tp in lost:
                    broker._owner.pop((self.group, tp), None)
                    self._position.pop(tp, None)
                self._owned -= lost
        gained = False
        with broker._lock:
            for tp in sorted(target - self._owned):
                if (self.group, tp) not in broker._owner:
                    broker._owner[(self.group, tp)] = self
                    self._owned.add(tp)
                    self._position[tp] = broker.committed(self.group, tp) or 0
                    gained = True
        if lost or gained or not self._rebalanced:
            self._rebalanced = True
            for callback in self._on_assign:
                callback(set(self._owned))

    def poll(self, timeout_ms: int, max_records: int) -> RecordBatch:
        """Up to ``max_records`` records from the owned partitions, partition by partition;
        when there are none, waits up to ``timeout_ms`` for some to be produced."""
        if self.closed:
            raise RuntimeError("poll on a closed source")
        self._rebalance()
        with self.broker._arrived:
            batch = self._take(max_records)
            if not len(batch) and timeout_ms > 0:
                self.broker._arrived.wait(timeout_ms / 1000)
                batch = self._take(max_records)
        return batch

    def _take(self, max_records: int) -> RecordBatch:
        out: list[Record] = []
        with self.broker._lock:
            for tp in sorted(self._owned):
                log = self.broker._partitions[tp[0]][tp[1]]
                start = self._position[tp]
                taken = log[start : start + max_records - len(out)]
                out.extend(taken)
                self._position[tp] = start + len(taken)
                if len(out) >= max_records:
                    break
        return RecordBatch.of(out)

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.broker._commit(self, offsets)

    def committed(self, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed next offsets of ``partitions`` (absent: none committed)."""
        found = {tp: self.broker.committed(self.group, tp) for tp in partitions}
        return {tp: offset for tp, offset in found.items() if offset is not None}

    def assignment(self) -> set[TopicPartition]:
        return set(self._owned)

    def lag(self, positions: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        return {tp: max(0, self.broker.end_offset(tp) - pos) for tp, pos in positions.items()}

    def close(self) -> None:
        """Leave the group (the worker has saved and committed before it closes)."""
        if not self.closed:
            self.closed = True
            self.broker._leave(self)
            self._owned.clear()


class MemorySink:
    """Appends to a `MemoryBroker`'s topics (implements `RecordSink`)."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self.closed = False

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> None:
        """Append a record; ``partition`` None lets the key pick it."""
        self.broker.produce(topic, key, value, headers, partition)

    def flush(self) -> None:
        if self.closed:
            raise RuntimeError("flush on a closed sink")

    def close(self) -> None:
        self.closed = True
