"""The two poison pills of issue 17 through a real `vigil worker` process: each used to
kill the worker at every restart and block its partition. Now the worker stays up, both
records are dead-lettered, and the partition's committed offset moves past them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.contracts.deadletter import BAD_META, OVERSIZED
from pipeline.local.stack import StackInfo
from pipeline.worker.wiring import create_topics
from tests.pipeline.kafka.helpers import read_all, test_settings
from tests.reliability.harness import spawn_worker, states, stop_process

T0 = 1_763_700_000_000
MINUTE = 60_000


def steady(i: int) -> bytes:
    return json.dumps({"ts": T0 + i * MINUTE, "value": 10 + 0.01 * (i % 3)}).encode()


def test_deep_meta_and_a_key_plus_value_at_the_limit_never_kill_the_worker(
    stack: StackInfo, topic_names: Any
) -> None:
    s = test_settings(stack, topic_names, topic_partitions=1, commit_interval_ms=100)
    create_topics(s)
    # 1,022 nested arrays in meta, on an event that alerts after 70 steady ones.
    deep = (f'{{"ts": {T0 + 70 * MINUTE}, "value": 5000, "m": ' + "[" * 1022 + "]" * 1022
            + "}").encode()  # fmt: skip
    big_key, big_value = b"k" * 524_188, b"x" * 524_289  # together under the broker's 1 MiB
    records = [(b"v", steady(i)) for i in range(70)]
    records += [(b"v", deep), (big_key, big_value)]
    records += [(b"v", steady(i)) for i in range(71, 76)]
    producer = KafkaProducer(bootstrap_servers=s.bootstrap_servers, acks="all",
                             max_request_size=2 * 1024 * 1024)  # fmt: skip
    for key, value in records:
        producer.send(s.events_topic, key=key, value=value)
    producer.flush()
    producer.close()

    proc = spawn_worker(s, idle_exit=600)
    try:
        dead = read_all(s.bootstrap_servers, s.deadletter_topic, expect=2, idle_s=60)
    finally:
        stop_process(proc)  # the worker is still up: it stops on SIGTERM with status 0

    by_offset = {int(dict(r.headers)["vigil.source.offset"]): r for r in dead}
    assert sorted(by_offset) == [70, 71]
    meta_pill = dict(by_offset[70].headers)
    assert meta_pill["vigil.reason"] == BAD_META.encode()
    assert b"nested more than" in meta_pill["vigil.detail"]
    assert by_offset[70].value == deep  # small enough to travel whole
    size_pill = by_offset[71]
    headers = dict(size_pill.headers)
    assert headers["vigil.reason"] == OVERSIZED.encode()
    assert headers["vigil.original.key_bytes"] == b"524188"
    assert headers["vigil.original.value_bytes"] == b"524289"
    assert headers["vigil.original.key_sha256"] == hashlib.sha256(big_key).hexdigest().encode()
    assert headers["vigil.original.value_sha256"] == hashlib.sha256(big_value).hexdigest().encode()
    assert big_key.startswith(size_pill.key) and big_value.startswith(size_pill.value)

    # Every other event applied, and the committed offset is past both pills.
    st, known = states(s, ["v"])
    assert known.all()
    assert int(st["count"][0]) == 75
    assert int(st["last_ts"][0]) == T0 + 75 * MINUTE
    probe = KafkaConsumer(bootstrap_servers=s.bootstrap_servers, group_id=s.group_id,
                          enable_auto_commit=False)  # fmt: skip
    try:
        assert probe.committed(TopicPartition(s.events_topic, 0)) == len(records)
    finally:
        probe.close()
