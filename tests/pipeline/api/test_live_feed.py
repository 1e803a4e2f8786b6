"""The live alert feed on a real uvicorn server and the session's real Redis: it stays up
while idle (keep-alive pings), one Redis reader serves many clients, and a cap answers 503.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import redis

from pipeline.api.app import create_app
from pipeline.contracts.alerts import Alert, alert_id, iso_utc
from pipeline.local.stack import StackInfo, free_port
from pipeline.settings import Settings
from pipeline.state.base import alerts_key
from pipeline.worker.wiring import create_topics, open_worker
from tests.pipeline.api.conftest import TOKEN, live_server, module_settings
from tests.pipeline.kafka.helpers import produce, sensor_events

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def inject_alert(settings: Settings, stream: str, ts_ms: int) -> None:
    """An alert as a worker's checkpoint writes it to the alerts stream."""
    alert = Alert(id=alert_id(stream, ts_ms), stream=stream, ts=iso_utc(ts_ms), ts_ms=ts_ms,
                  score=0.99, values={"value": 1.0}, expected={"value": 0.0},
                  top_feature="value", model_version="test", detector="test", meta={},
                  partition=0, offset=0)  # fmt: skip
    client = redis.Redis.from_url(settings.redis_address())
    client.xadd(alerts_key(settings.redis_prefix), {"alert": alert.to_json()})
    client.close()


def redis_clients(settings: Settings) -> int:
    client = redis.Redis.from_url(settings.redis_address())
    try:
        return int(client.info("clients")["connected_clients"]) - 1  # minus this one
    finally:
        client.close()


def test_an_idle_feed_stays_connected_with_pings_for_30_seconds(stack: StackInfo) -> None:
    settings = module_settings(stack, api_token=TOKEN, live_ping_seconds=4.0)
    with (
        live_server(create_app(settings)) as base,
        httpx.Client(base_url=base, headers=AUTH, timeout=httpx.Timeout(10.0)) as http,
        http.stream("GET", "/alerts/live") as res,
    ):
        assert res.status_code == 200
        lines = res.iter_lines()
        assert next(lines) == "retry: 3000"
        pings = 0
        started = time.monotonic()
        # Longer than redis-py's 5 s default socket timeout and than one XREAD block:
        # the old feed broke at 5 s; this one must still be there, pinging.
        while time.monotonic() - started < 30:
            line = next(lines)
            pings += line == ": ping"
        assert pings >= 5
        inject_alert(settings, "after-idle", 1_900_000_000_000)
        data = next(line for line in lines if line.startswith("data: "))
    assert json.loads(data.removeprefix("data: "))["stream"] == "after-idle"


async def _open_feeds(base: str, n: int, ready: asyncio.Event) -> list[Any]:
    """n concurrent feed clients; each returns (status, first alert's stream or None)."""

    async def one(http: httpx.AsyncClient) -> tuple[int, str | None]:
        async with http.stream("GET", "/alerts/live") as res:
            if res.status_code != 200:
                return res.status_code, (await res.aread()).decode()
            counted.append(1)
            if len(counted) == n:
                ready.set()
            async for line in res.aiter_lines():
                if line.startswith("data: "):
                    return 200, json.loads(line.removeprefix("data: "))["stream"]
        return 200, None

    counted: list[int] = []
    limits = httpx.Limits(max_connections=n + 10)
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=60, limits=limits) as http:
        return await asyncio.gather(*(one(http) for _ in range(n)))


def test_200_clients_share_one_redis_reader_and_a_worker_still_starts(
    stack: StackInfo,
) -> None:
    settings = module_settings(stack, api_token=TOKEN, live_max_clients=200)
    create_topics(settings)
    before = redis_clients(settings)
    with live_server(create_app(settings)) as base:
        loop = asyncio.new_event_loop()
        ready = asyncio.Event()
        feeds = loop.create_task(_open_feeds(base, 200, ready))
        loop.run_until_complete(asyncio.wait_for(ready.wait(), 120))
        # Every client is connected: the API holds the reader and its small pool only.
        during = redis_clients(settings)
        assert during - before <= 3, (before, during)
        # One more client is refused, clearly.
        over = httpx.get(f"{base}/alerts/live", headers=AUTH, timeout=10)
        assert over.status_code == 503
        assert "limit of 200 clients" in over.json()["detail"]
        # A worker connects to Redis and processes events while the feeds are open.
        events = sensor_events(3, 10, seed=1, spike_at=None)
        produce(settings.bootstrap_servers, settings.events_topic, events)
        stats = open_worker(settings).run(max_records=len(events), idle_exit_s=20)
        assert stats.applied == len(events)
        inject_alert(settings, "fan-out", 1_900_000_000_000)
        results = loop.run_until_complete(asyncio.wait_for(feeds, 60))
        loop.close()
    assert results == [(200, "fan-out")] * 200


def test_a_stopping_api_ends_its_live_feeds_at_once(stack: StackInfo, tmp_path: Any) -> None:
    """uvicorn waits for open requests before it stops, and feed clients never close
    theirs: SIGTERM must end them, not wait for Kubernetes to kill the pod."""
    settings = module_settings(stack)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env |= {"VIGIL_HOME": os.environ["VIGIL_HOME"], "VIGIL_REDIS_URL": stack.redis_url,
            "VIGIL_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
            "VIGIL_REDIS_PREFIX": settings.redis_prefix}  # fmt: skip
    log = tmp_path / "api.log"
    with open(log, "wb") as err:
        api = subprocess.Popen([sys.executable, "-m", "pipeline.cli.main", "api", "--port",
                                str(port)], env=env, stdout=err, stderr=err)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert api.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        with httpx.stream("GET", f"{base}/alerts/live", timeout=30) as res:
            lines = res.iter_lines()
            assert next(lines) == "retry: 3000"
            api.send_signal(signal.SIGTERM)
            rest = list(lines)  # the server ends the stream
        assert ": server stopping, reconnect" in rest
        # uvicorn re-raises the signal once it has shut down cleanly
        assert api.wait(timeout=15) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        if api.poll() is None:
            api.kill()
            api.wait()
