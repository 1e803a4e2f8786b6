"""Fixtures for the API tests: one worker run per module, and a real uvicorn server.

The data comes from a real worker on the session's Redis (its records from the in-memory
Kafka double: the API reads only Redis). It is built once per
module (module scope), so these tests never use the function-scoped `redis_client`
fixture, which would flush it; each module has its own topics and Redis prefix instead.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI

from pipeline.kafka.memory import MemoryBroker
from pipeline.local.stack import StackInfo, free_port
from pipeline.settings import Settings
from pipeline.worker.wiring import open_worker
from tests.pipeline.kafka.helpers import memory_worker, sensor_events, test_settings

TOKEN = "test-token-123"
N_STREAMS = 8
PER_STREAM = 120
SPIKE_AT = 100


def module_settings(stack: StackInfo, **overrides: object) -> Settings:
    run = uuid.uuid4().hex[:8]
    return test_settings(stack, lambda kind: f"vigil.{kind}.api.{run}", **overrides)


def run_on_memory(settings: Settings, events: list[tuple[bytes, bytes]]) -> None:
    """A real worker (real Redis) over ``events`` from the in-memory Kafka double."""
    broker = MemoryBroker()
    worker = memory_worker(settings, broker)
    broker.produce_all(settings.events_topic, events)
    assert worker.run(idle_exit_s=0).records == len(events)


def run_worker(settings: Settings, records: int) -> None:
    worker = open_worker(settings)
    stats = worker.run(max_records=records, idle_exit_s=20)
    assert stats.records == records


@pytest.fixture(scope="module")
def api_settings(stack: StackInfo) -> Settings:
    """Settings (with a token) over Redis data written by a real worker, fed from the
    in-memory Kafka double. Even streams spike at SPIKE_AT (and end the run inside their
    alert episode), odd ones never do."""
    settings = module_settings(stack, api_token=TOKEN, history_length=PER_STREAM)
    spiked = sensor_events(N_STREAMS, PER_STREAM, seed=3, spike_at=SPIKE_AT)
    quiet = sensor_events(N_STREAMS, PER_STREAM, seed=3, spike_at=None)
    events = [q if int(q[0][2:]) % 2 else e for e, q in zip(spiked, quiet, strict=True)]
    run_on_memory(settings, events)
    return settings


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve the app with uvicorn on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
