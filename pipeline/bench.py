"""`vigil bench`: how fast the worker is, measured against its own Kafka client.

One run, on one pre-loaded topic:

1. raw consume: the same Kafka client the worker uses reads every record and does nothing
   else — the ceiling for the worker;
2. end to end: a worker (GRU, hidden 64 by default) processes the same records from a new
   consumer group with empty Redis state: events/s and the worker/raw ratio;
3. latency: records produced at about half the measured end-to-end rate while a worker
   runs; p50/p99 from a record's create time to the flush of its batch's alerts;
4. memory: Redis bytes per stream (MEMORY USAGE of the state keys) and the record size.

Figures on a shared machine are noisy: run it several times and compare medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np
from kafka import KafkaProducer
from rich.console import Console
from rich.table import Table

from pipeline.history import history_key
from pipeline.kafka_io import KafkaPythonSource
from pipeline.runtime import create_topics, open_store, open_worker
from pipeline.settings import Settings
from pipeline.stack import LocalStack


@contextlib.contextmanager
def _stack_for(settings: Settings) -> Iterator[Settings]:
    """Use the configured broker and Redis, else start an embedded local stack."""
    if settings.bootstrap_servers and settings.redis_url.get_secret_value():
        yield settings
        return
    with LocalStack() as info:
        yield settings.replace(bootstrap_servers=info.bootstrap_servers, redis_url=info.redis_url)


def _event_values(n_streams: int, n_events: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """Round-robin over streams: a noisy daily cycle per stream, spikes in 0.5% of events."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(10, 100, n_streams)
    t0 = 1_763_700_000_000
    for i in range(n_events):
        s, step = i % n_streams, i // n_streams
        value = base[s] * (1 + 0.2 * np.sin(step / 24 * 2 * np.pi)) + rng.normal(0, 1)
        if rng.random() < 0.005:
            value += base[s] * 3
        body = {"stream": f"bench-{s:06d}", "ts": t0 + step * 60_000, "value": round(value, 3)}
        yield body["stream"], json.dumps(body, separators=(",", ":")).encode()


def _produce(
    settings: Settings, topic: str, records: Iterator[tuple[str, bytes]], rate: float = 0
) -> None:
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap().split(","), linger_ms=5, acks=1,
        batch_size=512 * 1024,
    )  # fmt: skip
    start = time.perf_counter()
    for n, (key, value) in enumerate(records, start=1):
        producer.send(topic, key=key.encode(), value=value)
        if rate and n % 100 == 0:
            ahead = n / rate - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush()
    producer.close()


def _raw_consume(settings: Settings, topic: str, n_events: int) -> float:
    source = KafkaPythonSource(
        settings.replace(group_id=f"bench-raw-{uuid.uuid4().hex[:8]}"), [topic]
    )
    seen, start = 0, None
    try:
        while seen < n_events:
            records = source.poll(settings.poll_timeout_ms, settings.max_poll_records)
            if records and start is None:
                start = time.perf_counter()
            seen += len(records)
    finally:
        source.close()
    return seen / (time.perf_counter() - (start or time.perf_counter()))


def _end_to_end(settings: Settings, n_events: int) -> tuple[float, dict[str, float]]:
    """Events/s from the first batch's arrival to the last batch's commit."""
    worker = open_worker(settings)
    stats = worker.run(max_records=n_events, idle_exit_s=30)
    if stats.first_batch_at is None or stats.last_batch_done is None:
        raise RuntimeError("the worker processed no records")
    elapsed = stats.last_batch_done - stats.first_batch_at
    store = open_store(settings)
    sample = [f"bench-{s:06d}" for s in range(0, 10_000, 97)]
    sizes = [store.stored_bytes(s) for s in sample]
    history = [
        store.client.memory_usage(history_key(settings.redis_prefix, s)) or 0 for s in sample
    ]
    memory = {
        "redis_bytes_per_stream": float(np.median([b for b in sizes if b] or [0])),
        "history_bytes_per_stream": float(np.median(history)),
        "record_bytes": float(worker.detector.layout.record_bytes),
    }
    return stats.records / max(elapsed, 1e-9), memory


def _latency(
    settings: Settings, topic: str, rate: float, n_streams: int, seconds: float
) -> tuple[float, float, int]:
    """Latency at a steady `rate`: the worker joins its group first, then records are
    produced; record create time -> the flush of the batch's alerts."""
    settings = settings.replace(group_id=f"bench-lat-{uuid.uuid4().hex[:8]}")
    worker = open_worker(settings)
    n_events = int(rate * seconds)
    runner = threading.Thread(
        target=worker.run, kwargs={"max_records": n_events, "idle_exit_s": 10}, daemon=True
    )
    runner.start()
    deadline = time.monotonic() + 60
    while not worker.source.assignment() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the first (empty) fetches settle
    _produce(settings, topic, _event_values(n_streams, n_events, seed=2), rate)
    runner.join()
    lat = np.array(worker.stats.latencies_ms or [np.nan])
    return float(np.nanpercentile(lat, 50)), float(np.nanpercentile(lat, 99)), len(lat)


def run_bench(settings: Settings, args: argparse.Namespace) -> int:
    console = Console()
    n_streams, n_events = args.streams, args.events
    with _stack_for(settings.replace(hidden_size=args.hidden)) as s:
        run = uuid.uuid4().hex[:8]
        s = s.replace(
            **{
                "events_topic": f"bench.events.{run}",
                "alerts_topic": f"bench.alerts.{run}",
                "deadletter_topic": f"bench.deadletter.{run}",
                "redis_prefix": f"bench-{run}",
                "group_id": f"bench-worker-{run}",
                "warmup_events": min(settings.warmup_events, 10),
            }
        )
        create_topics(s)
        console.print(f"pre-loading {n_events:,} events over {n_streams:,} streams …")
        _produce(s, s.events_topic, _event_values(n_streams, n_events, seed=1))
        console.print("raw consume …")
        raw = _raw_consume(s, s.events_topic, n_events)
        console.print("worker end to end …")
        e2e, memory = _end_to_end(s, n_events)
        console.print("latency at half load …")
        lat_topic = f"bench.latency.{run}"
        s_lat = s.replace(events_topic=lat_topic, redis_prefix=f"bench-lat-{run}")
        create_topics(s_lat)
        p50, p99, n_lat = _latency(s_lat, lat_topic, e2e * 0.5, n_streams, seconds=10)

    table = Table(title=f"vigil bench — {n_streams:,} streams, GRU hidden {args.hidden}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("raw consume (kafka-python)", f"{raw:,.0f} events/s")
    table.add_row("worker end to end", f"{e2e:,.0f} events/s")
    table.add_row("worker / raw consume", f"{e2e / raw:.2f}")
    table.add_row(f"event→alert latency p50 ({n_lat:,} events)", f"{p50:,.1f} ms")
    table.add_row("event→alert latency p99", f"{p99:,.1f} ms")
    table.add_row("Redis bytes per stream (state)", f"{memory['redis_bytes_per_stream']:,.0f} B")
    table.add_row(
        f"Redis bytes per stream (API history, {s.history_length} batches)",
        f"{memory['history_bytes_per_stream']:,.0f} B",
    )
    table.add_row("state record", f"{memory['record_bytes']:,.0f} B")
    console.print(table)
    return 0
