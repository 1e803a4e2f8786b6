"""`vigil bench`: how fast the worker is, measured against its own Kafka client.

For each Kafka backend, in one process run, on one pre-loaded topic:

1. raw consume: the backend's client reads every record and does nothing else — the
   ceiling for the worker; then the same plus the worker's decoding, validation and
   batch columns (no detector, no Redis) — the ceiling for any worker that decodes JSON
   in Python;
2. end to end: a worker (GRU, hidden 64 by default) processes the same records from a new
   consumer group with empty Redis state: events/s, and the ratio to the raw rate; then
   again without the changelog topic, for the cost of being able to restore states;
3. latency at 50% and 90% of that end-to-end rate: records produced at a steady rate
   while a worker runs; p50/p99/p999 from a record's create time to the broker's
   acknowledgement of its batch's alerts;
4. memory: Redis bytes per stream (state key, and the API's history list), the state
   record size, and the peak resident memory of this process (which ran the worker).

`--scale` adds the end-to-end rate for growing stream counts. `--redis-cluster` keeps the
states in a local 3-master Redis Cluster (`pipeline.local.cluster`) instead of one Redis.
`--workers 1,2,3` measures only how the rate grows with worker processes in one group
(`pipeline.local.bench_workers`).
`--runs N` repeats the whole measurement and reports medians: these machines are shared
and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import resource
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import orjson
from confluent_kafka import Producer
from rich.console import Console
from rich.table import Table

from pipeline.contracts.columns import decode_columns
from pipeline.local.bench_workers import report_workers, workers_curve
from pipeline.local.cluster import LocalCluster
from pipeline.local.stack import LocalStack
from pipeline.settings import Settings
from pipeline.state.base import history_key, scores_key
from pipeline.state.redis import open_store
from pipeline.worker.batch import BatchColumns
from pipeline.worker.wiring import create_topics, make_source, open_worker

T0_MS = 1_763_700_000_000


@contextlib.contextmanager
def _stack_for(settings: Settings, redis_cluster: bool = False) -> Iterator[Settings]:
    """Use the configured broker and Redis, else start an embedded local stack; with
    `redis_cluster`, states go to a local 3-master Redis Cluster instead."""
    if settings.bootstrap_servers and settings.redis_url.get_secret_value():
        yield settings
        return
    with LocalStack() as info, contextlib.ExitStack() as extra:
        url = extra.enter_context(LocalCluster()) if redis_cluster else info.redis_url
        yield settings.replace(bootstrap_servers=info.bootstrap_servers, redis_url=url)


def _event_values(n_streams: int, n_events: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """Round-robin over streams: a noisy daily cycle per stream, spikes in 0.5% of events."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(10, 100, n_streams)
    for start in range(0, n_events, 10_000):
        idx = np.arange(start, min(n_events, start + 10_000))
        s, step = idx % n_streams, idx // n_streams
        value = base[s] * (1 + 0.2 * np.sin(step / 24 * 2 * np.pi)) + rng.normal(0, 1, len(idx))
        value += np.where(rng.random(len(idx)) < 0.005, base[s] * 3, 0.0)
        for si, st, v in zip(s.tolist(), step.tolist(), np.round(value, 3).tolist(), strict=True):
            stream = f"bench-{si:07d}"
            body = {"stream": stream, "ts": T0_MS + st * 60_000, "value": v}
            yield stream, orjson.dumps(body)


def _produce(
    settings: Settings | str, topic: str, records: Iterator[tuple[str, bytes]], rate: float = 0
) -> None:
    """The load generator: librdkafka's producer, so that producing costs little CPU and the
    measurement shows the worker rather than the generator (these are 2-core machines)."""
    bootstrap = settings if isinstance(settings, str) else settings.kafka_bootstrap()
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": 1,
         "queue.buffering.max.messages": 1_000_000, "enable.idempotence": False}
    )  # fmt: skip
    start = time.perf_counter()
    for n, (key, value) in enumerate(records, start=1):
        while True:
            try:
                producer.produce(topic, value, key.encode())
                break
            except BufferError:
                producer.poll(0.05)
        if n % 1000 == 0:
            producer.poll(0)
        if rate and n % 100 == 0:
            ahead = n / rate - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
    if producer.flush(60):
        raise RuntimeError("the bench producer could not deliver every record within 60 s")


def _produce_steadily(
    bootstrap: str, topic: str, n_streams: int, n_events: int, rate: float
) -> None:
    """Entry point of the latency phase's producer process. The records are made before the
    clock starts, so that at the paced rate the generator costs little more than the
    client's own work: on 2 cores every bit it uses is taken from the worker."""
    records = list(_event_values(n_streams, n_events, seed=2))
    _produce(bootstrap, topic, iter(records), rate)


def _raw_consume(settings: Settings, n_events: int, decode: bool = False) -> float:
    """Events/s of the backend's client alone; with `decode`, also the worker's decoding,
    validation and batch columns: the ceiling of any worker that still has a detector to
    step and states to load and save."""
    source = make_source(settings.replace(group_id=f"bench-raw-{uuid.uuid4().hex[:8]}"))
    features = settings.max_features
    seen, start = 0, None
    deadline = time.monotonic() + 300
    try:
        while seen < n_events and time.monotonic() < deadline:
            records = source.poll(settings.poll_timeout_ms, settings.max_poll_records)
            if records and start is None:
                start = time.perf_counter()
            seen += len(records)
            if decode and records:
                decoded = decode_columns(
                    records,
                    max_features=features,
                    max_abs_value=settings.max_abs_value,
                    max_message_bytes=settings.max_message_bytes,
                )
                BatchColumns.of(decoded, records, features)
    finally:
        source.close()
    return seen / max(time.perf_counter() - (start or time.perf_counter()), 1e-9)


def _end_to_end(settings: Settings, n_events: int) -> float:
    """Events/s from the first batch's arrival to the last batch's commit."""
    stats = open_worker(settings).run(max_records=n_events, idle_exit_s=30)
    if stats.first_batch_at is None or stats.last_batch_done is None:
        raise RuntimeError("the worker processed no records")
    return stats.records / max(stats.last_batch_done - stats.first_batch_at, 1e-9)


def _memory(settings: Settings, n_streams: int) -> dict[str, float]:
    store = open_store(settings)
    sample = [f"bench-{s:07d}" for s in range(0, n_streams, max(1, n_streams // 100))]
    states = [store.stored_bytes(s) for s in sample]
    history = [store.client.memory_usage(history_key(settings.redis_prefix, s)) or 0
               for s in sample]  # fmt: skip
    # The latest-score index is one sorted set for all streams: its share per stream.
    ranked = store.client.zcard(scores_key(settings.redis_prefix)) or 1
    index = (store.client.memory_usage(scores_key(settings.redis_prefix), samples=0) or 0) / ranked
    return {
        "state": float(np.median([b for b in states if b] or [0])),
        "history": float(np.median(history)),
        "score index": float(index),
    }


def _latency(settings: Settings, rate: float, n_streams: int, seconds: float) -> np.ndarray:
    """Latencies (ms) at a steady `rate`: the worker joins its group first, then records
    are produced; record create time -> acknowledgement of its batch's alerts."""
    run = uuid.uuid4().hex[:8]
    s = settings.replace(events_topic=f"bench.latency.{run}", group_id=f"bench-lat-{run}")
    create_topics(s)
    worker = open_worker(s)
    n_events = max(1000, int(rate * seconds))
    runner = threading.Thread(
        target=worker.run, kwargs={"max_records": n_events, "idle_exit_s": 60}, daemon=True
    )
    runner.start()
    if not worker.ready.wait(60):
        raise RuntimeError("the latency worker was not assigned partitions within 60 s")
    time.sleep(0.5)  # let the first (empty) fetches settle
    # The producer runs in its own process: in this one it would compete with the worker
    # for the interpreter lock and the measurement would show that, not the worker.
    producer = multiprocessing.get_context("spawn").Process(
        target=_produce_steadily,
        args=(s.kafka_bootstrap(), s.events_topic, n_streams, n_events, rate),
    )
    producer.start()
    producer.join()
    runner.join()
    if not worker.stats.latencies_ms:
        raise RuntimeError("the latency worker processed no records")
    return np.array(worker.stats.latencies_ms)


@dataclass
class BackendResult:
    raw: list[float] = field(default_factory=list)
    decode: list[float] = field(default_factory=list)  # consume + decode + columns
    e2e: list[float] = field(default_factory=list)  # with the changelog (state restore) on
    e2e_bare: list[float] = field(default_factory=list)  # the same without it
    latency: dict[int, list[np.ndarray]] = field(default_factory=dict)  # % of peak -> runs


def _isolated(s: Settings, tag: str) -> Settings:
    run = uuid.uuid4().hex[:8]
    return s.replace(
        events_topic=f"bench.events.{tag}.{run}",
        alerts_topic=f"bench.alerts.{tag}.{run}",
        deadletter_topic=f"bench.deadletter.{tag}.{run}",
        changelog_topic=f"bench.changelog.{tag}.{run}",
        redis_prefix=f"bench-{tag}-{run}",
        group_id=f"bench-worker-{run}",
    )


def _measure_backend(
    s: Settings, backend: str, n_streams: int, n_events: int, console: Console,
    result: BackendResult, memory: dict[str, float], latency_seconds: float,
) -> None:  # fmt: skip
    s = _isolated(s.replace(kafka_backend=backend), "e2e")
    create_topics(s)
    console.print(f"[{backend}] pre-loading {n_events:,} events over {n_streams:,} streams …")
    _produce(s, s.events_topic, _event_values(n_streams, n_events, seed=1))
    console.print(f"[{backend}] raw consume …")
    result.raw.append(_raw_consume(s, n_events))
    console.print(f"[{backend}] consume + decode …")
    result.decode.append(_raw_consume(s, n_events, decode=True))
    console.print(f"[{backend}] worker end to end …")
    e2e = _end_to_end(s, n_events)
    result.e2e.append(e2e)
    console.print(f"[{backend}] worker end to end without the changelog …")
    bare = s.replace(changelog_topic="", group_id=f"{s.group_id}-bare",
                     redis_prefix=f"{s.redis_prefix}-bare")  # fmt: skip
    result.e2e_bare.append(_end_to_end(bare, n_events))
    memory.update(_memory(s, n_streams))
    for share in (50, 90):
        console.print(f"[{backend}] latency at {share}% of {e2e:,.0f} events/s …")
        lat = _latency(s, e2e * share / 100, n_streams, seconds=latency_seconds)
        result.latency.setdefault(share, []).append(lat)


def _scale_curve(
    s: Settings, backend: str, sizes: list[int], console: Console
) -> list[tuple[int, float]]:
    curve = []
    for n in sizes:
        st = _isolated(s.replace(kafka_backend=backend), f"scale{n}")
        create_topics(st)
        n_events = max(100_000, 2 * n)
        console.print(f"[scale] {n:,} streams, {n_events:,} events …")
        _produce(st, st.events_topic, _event_values(n, n_events, seed=3))
        curve.append((n, _end_to_end(st, n_events)))
    return curve


def _backends(requested: str) -> list[str]:
    names = [b.strip() for b in requested.split(",") if b.strip()]
    for name in names:
        if name not in ("kafka-python", "confluent"):
            raise ValueError(f"unknown backend {name!r} (kafka-python, confluent)")
    return names


def run_bench(settings: Settings, args: argparse.Namespace) -> int:
    console = Console()
    backends = _backends(args.backends)
    n_streams, n_events = args.streams, args.events
    results = {b: BackendResult() for b in backends}
    memory: dict[str, float] = {}
    curve: list[tuple[int, float]] = []
    base = settings.replace(hidden_size=args.hidden, warmup_events=min(settings.warmup_events, 10))
    if args.workers:
        return _run_workers(base, args, console)
    with _stack_for(base, args.redis_cluster) as s:
        for run in range(args.runs):
            for backend in backends:
                console.print(f"[bold]run {run + 1}/{args.runs}[/]")
                _measure_backend(
                    s, backend, n_streams, n_events, console, results[backend], memory,
                    args.latency_seconds,
                )  # fmt: skip
        if args.scale:
            sizes = [int(x) for x in args.scale.split(",")]
            curve = _scale_curve(s, backends[-1], sizes, console)
    _report(console, results, memory, curve, n_streams, args, backends[-1], s.history_length)
    return 0


def _run_workers(base: Settings, args: argparse.Namespace, console: Console) -> int:
    """`--workers 1,2,4`: only the many-workers curve (`pipeline.local.bench_workers`)."""
    counts = [int(x) for x in args.workers.split(",")]
    if any(n < 1 for n in counts):
        raise ValueError("--workers takes positive worker counts, e.g. 1,2,3")
    partitions = args.partitions or max(counts)
    backend = _backends(args.backends)[-1]

    with _stack_for(base, args.redis_cluster) as s:

        def prepare(n: int) -> Settings:
            st = _isolated(s.replace(kafka_backend=backend, topic_partitions=partitions), f"w{n}")
            create_topics(st)
            _produce(st, st.events_topic, _event_values(args.streams, args.events, seed=4))
            return st

        curve = workers_curve(counts, args.runs, prepare, console)
    report_workers(console, curve)
    return 0


def _pct(runs: list[np.ndarray], q: float) -> float:
    """Median over runs of each run's q-th percentile."""
    return statistics.median(float(np.nanpercentile(x, q)) for x in runs)


def _costs(with_it: list[float], without: list[float]) -> list[float]:
    """Per run, the share of the rate a feature costs."""
    return [1 - w / b for w, b in zip(with_it, without, strict=True)]


def _report(
    console: Console, results: dict[str, BackendResult], memory: dict[str, float],
    curve: list[tuple[int, float]], n_streams: int, args: argparse.Namespace, scale_backend: str,
    history_length: int,
) -> None:  # fmt: skip
    med = statistics.median
    where = ", Redis Cluster (3 masters)" if args.redis_cluster else ""
    table = Table(
        title=f"vigil bench — {n_streams:,} streams, GRU hidden {args.hidden}{where}, "
        f"median of {args.runs} run(s)"
    )
    table.add_column("measure")
    for backend in results:
        table.add_column(backend, justify="right")

    def row(label: str, fn: object) -> None:
        table.add_row(label, *[fn(r) for r in results.values()])  # type: ignore[operator]

    row("raw consume, events/s", lambda r: f"{med(r.raw):,.0f}")
    row("consume + decode, events/s", lambda r: f"{med(r.decode):,.0f}")
    row("consume + decode / raw consume",
        lambda r: f"{med(d / w for d, w in zip(r.decode, r.raw, strict=True)):.2f}")  # fmt: skip
    row("worker end to end, events/s", lambda r: f"{med(r.e2e):,.0f}")
    row("  no changelog, events/s", lambda r: f"{med(r.e2e_bare):,.0f}")
    row("  changelog cost", lambda r: f"{med(_costs(r.e2e, r.e2e_bare)):.0%}")
    row("worker / raw consume",
        lambda r: f"{med(e / w for e, w in zip(r.e2e, r.raw, strict=True)):.2f}")  # fmt: skip
    for share in (50, 90):
        for q in (50, 99, 99.9):
            row(f"latency p{q:g} at {share}% load, ms",
                lambda r, share=share, q=q: f"{_pct(r.latency[share], q):,.1f}")  # fmt: skip
    console.print(table)
    mem = Table(title="memory", show_header=False)
    mem.add_column("what")
    mem.add_column("value", justify="right")
    mem.add_row("Redis bytes per stream: state", f"{memory.get('state', 0):,.0f} B")
    mem.add_row("Redis bytes per stream: score index", f"{memory.get('score index', 0):,.0f} B")
    mem.add_row(
        f"Redis bytes per stream: API history ({history_length} points)",
        f"{memory.get('history', 0):,.0f} B",
    )
    total = sum(memory.get(k, 0.0) for k in ("state", "score index", "history"))
    mem.add_row("Redis bytes per stream: total", f"{total:,.0f} B")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mem.add_row("peak resident memory of this process (ran the workers)", f"{peak_mb:,.0f} MB")
    console.print(mem)
    if curve:
        raw = med(results[scale_backend].raw)
        sc = Table(title=f"scale curve ({scale_backend})")
        sc.add_column("streams", justify="right")
        sc.add_column("events/s", justify="right")
        sc.add_column("/ raw consume", justify="right")
        for n, rate in curve:
            sc.add_row(f"{n:,}", f"{rate:,.0f}", f"{rate / raw:.2f}")
        console.print(sc)
