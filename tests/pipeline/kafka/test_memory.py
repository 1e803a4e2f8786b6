"""The in-memory Kafka double behaves as the worker relies on Kafka to behave."""

from __future__ import annotations

import pytest

from pipeline.kafka.memory import CommitFailed, MemoryBroker


def test_keys_pick_partitions_and_offsets_grow_per_partition() -> None:
    broker = MemoryBroker()
    broker.create_topic("t", partitions=3)
    records = [broker.produce("t", f"k{i % 4}".encode(), b"v") for i in range(40)]
    by_key: dict[bytes | None, set[int]] = {}
    for r in records:
        by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(parts) == 1 for parts in by_key.values())
    for p in range(3):
        offsets = [r.offset for r in broker.records("t") if r.partition == p]
        assert offsets == list(range(len(offsets)))
    assert len(broker.records("t")) == 40


def test_a_member_reads_from_the_committed_offset() -> None:
    broker = MemoryBroker()
    broker.create_topic("t", partitions=2)
    broker.produce_all("t", [(f"k{i}".encode(), b"v") for i in range(10)])
    first = broker.source(["t"], "g")
    batch = first.poll(0, 4)
    assert len(batch) == 4
    assert first.assignment() == {("t", 0), ("t", 1)}
    taken = {(r.topic, r.partition): r.offset + 1 for r in batch.records()}
    first.commit(taken)
    assert first.committed({("t", 0), ("t", 1)}) == taken
    first.close()
    second = broker.source(["t"], "g")
    rest = second.poll(0, 100).records()
    assert len(rest) == 6  # the four committed are not read again
    assert broker.source(["t"], "other").poll(0, 100).records() != []  # another group: all


def test_a_joining_member_gets_partitions_only_after_the_owner_revoked() -> None:
    broker = MemoryBroker()
    broker.create_topic("t", partitions=4)
    first = broker.source(["t"], "g")
    revoked: list[set[tuple[str, int]]] = []
    assigned: list[set[tuple[str, int]]] = []
    first.on_revoke(revoked.append)
    first.on_assign(assigned.append)
    first.poll(0, 10)
    assert len(first.assignment()) == 4
    assert assigned == [first.assignment()]
    second = broker.source(["t"], "g")
    second.poll(0, 10)
    assert second.assignment() == set()  # still owned by first, which has not polled
    with pytest.raises(CommitFailed):
        second.commit({("t", 1): 0})
    first.poll(0, 10)  # revoke runs inside poll, before the partitions move
    assert revoked == [{("t", 1), ("t", 3)}]
    assert first.assignment() == {("t", 0), ("t", 2)}
    assert assigned[-1] == {("t", 0), ("t", 2)}
    with pytest.raises(CommitFailed, match="no longer assigned"):
        first.commit({("t", 1): 5})
    second.poll(0, 10)
    assert second.assignment() == {("t", 1), ("t", 3)}


def test_a_closed_member_gives_its_partitions_back() -> None:
    broker = MemoryBroker()
    broker.create_topic("t", partitions=2)
    first, second = broker.source(["t"], "g"), broker.source(["t"], "g")
    first.poll(0, 1)
    second.poll(0, 1)
    assert first.assignment() and second.assignment()
    second.close()
    first.poll(0, 1)
    assert first.assignment() == {("t", 0), ("t", 1)}
    assert first.lag({("t", 0): 0}) == {("t", 0): 0}


def test_the_sink_appends_with_headers() -> None:
    broker = MemoryBroker()
    sink = broker.sink()
    broker.create_topic("out", partitions=3)
    sink.send("out", b"k", b"v", [("h", b"1")], partition=2)
    sink.flush()
    (record,) = broker.records("out")
    assert (record.key, record.value, record.headers) == (b"k", b"v", [("h", b"1")])
    assert (record.partition, record.offset) == (2, 0)
