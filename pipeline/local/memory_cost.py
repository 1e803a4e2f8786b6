"""`python -m pipeline.local.memory_cost`: what a worker keeps per stream besides the
states it holds — the caches keyed by stream id — measured with tracemalloc; with
`--worker N`, the resident memory of a whole worker over N streams on the local stack.

Three caches grow with the number of distinct streams a worker sees, each with its own
bound: the decoder's valid-key cache (`contracts.columns`, cleared past `_VALID_MAX`
entries) and the Redis key name caches (`state.base.state_key` and `history_key`, LRU of
`1 << 18`; the history one only with history on). Their cost depends on the id length,
so both a short and a maximal (200-character) id are measured. The held states have
their own cap (`max_cached_streams`).
"""

from __future__ import annotations

import argparse
import gc
import json
import threading
import time
import tracemalloc
import uuid

import psutil
from kafka import KafkaProducer

from pipeline.contracts import columns
from pipeline.contracts.columns import decode_columns
from pipeline.kafka.base import Record, RecordBatch
from pipeline.local.stack import LocalStack
from pipeline.settings_loader import load_settings
from pipeline.state.base import history_key, state_key
from pipeline.worker.wiring import create_topics, open_worker

STREAMS = 50_000


def per_stream(id_length: int, n: int = STREAMS) -> dict[str, float]:
    """Bytes per distinct stream in each cache, for ids of `id_length` characters."""
    ids = [f"{i:0{id_length}d}" for i in range(n)]
    value = json.dumps({"ts": 1_763_700_000_000, "value": 1.0}).encode()
    batch = RecordBatch.of([Record("t", 0, i, s.encode(), value, [], 0) for i, s in enumerate(ids)])
    state_key.cache_clear()
    history_key.cache_clear()
    columns._VALID_KEYS.clear()
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        decode_columns(batch, max_features=4, max_abs_value=1e12, max_message_bytes=65536)
        decoded = tracemalloc.get_traced_memory()[0]
        for s in ids:
            state_key("vigil", s)
        keyed = tracemalloc.get_traced_memory()[0]
        for s in ids:
            history_key("vigil", s)
        end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return {
        "decoder's valid-key cache": (decoded - start) / n,
        "state key cache": (keyed - decoded) / n,
        "history key cache (history on)": (end - keyed) / n,
    }


def worker_rss(streams: int, id_length: int) -> str:
    """Start a local stack, produce two events per stream, run one worker over them and
    report its resident memory after start and at its peak (sampled every 0.2 s)."""
    with LocalStack() as info:
        run = uuid.uuid4().hex[:8]
        s = load_settings(None, bootstrap_servers=info.bootstrap_servers,
                          redis_url=info.redis_url, events_topic=f"memory.{run}",
                          alerts_topic=f"memory.alerts.{run}",
                          deadletter_topic=f"memory.dead.{run}", group_id=f"memory-{run}",
                          redis_prefix=f"memory-{run}")  # fmt: skip
        create_topics(s)
        producer = KafkaProducer(bootstrap_servers=s.bootstrap_servers, linger_ms=20,
                                 batch_size=512 * 1024)  # fmt: skip
        for step in range(2):
            for i in range(streams):
                body = {"ts": 1_763_700_000_000 + step * 60_000, "value": float(i % 7)}
                key = f"{i:0{id_length}d}".encode()
                producer.send(s.events_topic, key=key, value=json.dumps(body).encode())
        producer.flush()
        producer.close()
        process = psutil.Process()
        worker = open_worker(s)
        start = peak = process.memory_info().rss
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.2):
                peak = max(peak, process.memory_info().rss)

        threading.Thread(target=sample, daemon=True).start()
        began = time.monotonic()
        stats = worker.run(max_records=2 * streams, idle_exit_s=30)
        done.set()
    return (f"worker over {streams:,} streams ({id_length}-character ids, two events each, "
            f"{stats.applied:,} applied in {time.monotonic() - began:.0f} s): resident "
            f"{start / 1e6:.0f} MB after start, peak {peak / 1e6:.0f} MB, "
            f"{(peak - start) / streams:.0f} B per stream above start")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=int, metavar="N", help="also run a worker over N streams")
    parser.add_argument("--id-length", type=int, default=200, help="stream id length for --worker")
    args = parser.parse_args()
    bounds = {
        "decoder's valid-key cache": columns._VALID_MAX,
        "state key cache": state_key.cache_info().maxsize,
        "history key cache (history on)": history_key.cache_info().maxsize,
    }
    for length in (12, 200):
        costs = per_stream(length)
        print(f"stream ids of {length} characters ({STREAMS:,} streams, tracemalloc):")
        for name, cost in costs.items():
            cap = bounds[name] or 0
            at_bound = cost * cap / 1e6
            print(f"  {name:32} {cost:6.0f} B/stream  at its bound ({cap:,}) {at_bound:5.0f} MB")
        total = sum(costs[k] * (bounds[k] or 0) for k in costs)
        print(f"  {'all three at their bounds':32} {'':15} {total / 1e6:5.0f} MB")
    if args.worker:
        print(worker_rss(args.worker, args.id_length))


if __name__ == "__main__":
    main()
