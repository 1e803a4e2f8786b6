"""Fuzzed input through a running worker (real broker and Redis).

Hypothesis generates well over 10,000 records: random bytes, deeply nested JSON, huge
numbers, NaN/Infinity, hostile and oversized stream ids and keys, unicode stream ids, and
valid events that are duplicated or out of order. They are produced in one go and one
worker consumes them all. A small model of the contract says what must happen to each
record; the test checks that every bad record is in the dead-letter topic exactly once
with a reason, and that every good one was applied exactly once (state counts, offsets,
timestamps per stream).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from pipeline.contracts.deadletter import (
    BAD_STREAM_ID,
    DUPLICATE_TS,
    FEATURE_MISMATCH,
    MALFORMED_JSON,
    NON_FINITE,
    NOT_AN_OBJECT,
    OUT_OF_ORDER,
    OVERSIZED,
    REASONS,
)
from pipeline.local.stack import StackInfo
from pipeline.models.serving import build_detector
from pipeline.state.redis import open_store
from pipeline.worker.wiring import create_topics
from tests.pipeline.kafka.helpers import read_all, test_settings
from tests.reliability.harness import in_process_worker

EXAMPLES = 2000  # x 5..10 records each: at least 10,000 records
T0 = 1_763_700_000_000
BAD = "bad"  # expected outcome: dead letter, any reason


# --- what hypothesis draws: plans for records, turned into bytes in produce order ------


@dataclass(frozen=True)
class Good:
    """A well-formed event; whether it applies depends on the stream's history."""

    stream: str
    when: str  # "next" (newer than anything sent), "dup" (= last applied), "back" (older)
    features: int  # 0 = the stream's usual features, 1 = different ones
    value: float
    iso: bool


@dataclass(frozen=True)
class Raw:
    """Bytes that must be rejected; `reason` when the contract names the reason."""

    key: bytes | None
    value: bytes
    reason: str = BAD


_stream_chars = st.characters(blacklist_categories=("Cc", "Cs"))
stream_ids = st.text(_stream_chars, min_size=1, max_size=40)
POOL: list[str] = []


def _good(pool: list[str]) -> st.SearchStrategy[Good]:
    return st.builds(
        Good,
        stream=st.sampled_from(pool),
        when=st.sampled_from(["next", "next", "next", "next", "dup", "back"]),
        features=st.sampled_from([0, 0, 0, 0, 0, 1]),
        value=st.floats(-1e6, 1e6, allow_nan=False),
        iso=st.booleans(),
    )


def _event(stream: Any, value: str, ts: str = "1763700000000", extra: str = "") -> bytes:
    return f'{{"stream":{json.dumps(stream)},"ts":{ts},"value":{value}{extra}}}'.encode()


_not_an_event = st.binary(max_size=300).filter(lambda b: not b.lstrip().startswith(b"{"))
_deep = st.builds(lambda n, open_: (open_ * n + ("]" if open_ == "[" else "}") * n).encode(),
                  st.integers(1, 40_000), st.sampled_from(["[", '{"a":']))  # fmt: skip
_non_finite = st.builds(
    lambda s, lit, in_meta: Raw(s.encode(), _event(s, "1", extra=f',"m":{lit}') if in_meta
                            else _event(s, lit), NON_FINITE),
    stream_ids, st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400"]),
    st.booleans(),
)  # fmt: skip
_huge_int = st.builds(lambda d: _event("huge", "9" * d), st.integers(13, 6000))
_bad_stream = st.one_of(
    st.text(min_size=201, max_size=400),  # too long
    st.builds(lambda a, c, b: a + c + b, st.text(max_size=5),
              st.sampled_from(["\x00", "\n", "\x7f", "\x85", "\ud800"]), st.text(max_size=5)),
    st.just(""),
)  # fmt: skip
_bad_stream_raw = st.builds(
    lambda s: Raw(s.encode("utf-8", "surrogatepass") or None, _event(s, "1")),
    _bad_stream,
)  # fmt: skip
_big_key = st.builds(lambda n: Raw(b"k" * n, b'{"ts":1763700000000,"value":1}'),
                     st.integers(201, 20_000))  # fmt: skip

hostile: st.SearchStrategy[Raw] = st.one_of(
    st.builds(Raw, st.none() | st.binary(max_size=50), _not_an_event),
    st.builds(Raw, st.just(None), _deep),
    _non_finite,
    st.builds(Raw, st.just(b"huge"), _huge_int),
    _bad_stream_raw,
    _big_key,
)


def _mixed(pool: list[str]) -> st.SearchStrategy[Good | Raw]:
    """About three good events in four records: enough history per stream to reach
    duplicates, reordering and feature changes."""
    good = _good(pool)
    return st.integers(0, 3).flatmap(lambda i: hostile if i == 0 else good)


def _collect(strategy: st.SearchStrategy[Any], examples: int) -> list[Any]:
    """Run hypothesis' generator `examples` times and keep what it drew."""
    drawn: list[Any] = []

    @settings(max_examples=examples, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn


# --- the contract's model --------------------------------------------------------------


class Model:
    """Per stream: what the worker must have applied, and each record's expected fate."""

    def __init__(self) -> None:
        self.last_ts: dict[str, int] = {}
        self.features: dict[str, tuple[str, ...]] = {}
        self.top_ts: dict[str, int] = {}
        self.applied: dict[str, int] = {}

    def render(self, plan: Good) -> tuple[bytes, str | None]:
        """The record's JSON value and its expected fate (None = applied)."""
        s = plan.stream
        last = self.last_ts.get(s)
        if plan.when == "dup" and last is not None:
            ts = last
        elif plan.when == "back" and last is not None:
            ts = last - 1000
        else:
            ts = self.top_ts.get(s, T0) + 60_000
        self.top_ts[s] = max(self.top_ts.get(s, T0), ts)
        names = ("value",) if plan.features == 0 else ("a", "b")
        if plan.features == 0:
            value = _event(s, repr(plan.value), _ts(ts, plan.iso))
        else:
            body = {"stream": s, "ts": ts, "values": {"a": plan.value, "b": 1.0}}
            value = json.dumps(body).encode()
        if last is not None:
            if ts < last:
                return value, OUT_OF_ORDER
            if ts == last:
                return value, DUPLICATE_TS
            if names != self.features[s]:
                return value, FEATURE_MISMATCH
        self.features.setdefault(s, names)
        self.last_ts[s] = ts
        self.applied[s] = self.applied.get(s, 0) + 1
        return value, None


def _ts(ms: int, iso: bool) -> str:
    if not iso:
        return str(ms)
    from datetime import datetime, timezone

    text = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")
    return json.dumps(text)


def test_fuzzed_records_never_crash_the_worker(stack: StackInfo, topic_names: Any) -> None:
    POOL[:] = _collect(st.lists(stream_ids, min_size=30, max_size=30, unique=True), 1)[0]
    batches = _collect(st.lists(_mixed(POOL), min_size=5, max_size=10),
                       EXAMPLES)  # fmt: skip
    plans = [p for batch in batches for p in batch]
    assert len(plans) >= 10_000

    s = test_settings(stack, topic_names, max_poll_records=2000, history_length=8)
    create_topics(s)
    model = Model()
    producer = KafkaProducer(bootstrap_servers=s.bootstrap_servers, acks="all", linger_ms=5,
                             max_request_size=4 * 1024 * 1024)  # fmt: skip
    futures: list[tuple[Any, str | None]] = []
    last_applied: dict[str, int] = {}  # stream -> index of its last applied record
    for plan in plans:
        if isinstance(plan, Good):
            value, fate = model.render(plan)
            key: bytes | None = plan.stream.encode()
            if fate is None:
                last_applied[plan.stream] = len(futures)
        else:
            key, value, fate = plan.key, plan.value, plan.reason
        futures.append((producer.send(s.events_topic, key=key, value=value), fate))
    producer.flush()
    offsets = [(m.partition, m.offset) for m in (f.get(timeout=30) for f, _ in futures)]
    expected = dict(zip(offsets, (fate for _, fate in futures), strict=True))
    producer.close()

    worker = in_process_worker(s)
    stats = worker.run(max_records=len(plans), idle_exit_s=20)  # returns: it never crashed
    good = sum(model.applied.values())
    assert stats.records == len(plans)
    assert stats.applied == good

    # Every good event applied once: counts, last offsets and timestamps per stream.
    detector = build_detector(s)
    streams = sorted(model.applied)
    states, known = detector.layout.decode(open_store(s).load(streams))
    assert known.all()
    assert dict(zip(streams, states["count"].tolist(), strict=True)) == model.applied
    assert list(zip(states["partition"].tolist(), states["offset"].tolist(), strict=True)) == [
        offsets[last_applied[sid]] for sid in streams
    ]
    assert dict(zip(streams, states["last_ts"].tolist(), strict=True)) == {
        sid: model.last_ts[sid] for sid in streams
    }

    # Every bad record in the dead-letter topic exactly once, with a reason.
    bad = {where: fate for where, fate in expected.items() if fate is not None}
    dead = read_all(s.bootstrap_servers, s.deadletter_topic, expect=len(bad))
    seen: dict[tuple[int, int], str] = {}
    for record in dead:
        headers = dict(record.headers)
        where = (int(headers["vigil.source.partition"]), int(headers["vigil.source.offset"]))
        assert where not in seen, f"dead letter {where} written twice"
        seen[where] = headers["vigil.reason"].decode()
    assert set(seen) == set(bad)
    for where, fate in bad.items():
        assert seen[where] in REASONS
        if fate != BAD:
            assert seen[where] == fate, (where, fate, seen[where])
    assert sum(stats.deadletters.values()) == len(bad)
    # The generator reached every kind of outcome it was built for.
    assert good > 3000
    assert set(stats.deadletters) >= {
        NON_FINITE,
        OUT_OF_ORDER,
        DUPLICATE_TS,
        FEATURE_MISMATCH,
        MALFORMED_JSON,
        NOT_AN_OBJECT,
        BAD_STREAM_ID,
        OVERSIZED,
    }
