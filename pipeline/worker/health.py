"""A worker's own HTTP port: /healthz, /readyz and /metrics, for Kubernetes and Prometheus.

Why a port per worker: the API's /metrics sums every worker's counters through Redis, which
says nothing about one pod; a probe must ask the pod itself whether its loop turns. Why the
standard library's threaded server: three read-only routes need no framework, and a
daemon thread keeps the worker loop untouched (it only sets two attributes the routes
read: `turned_at` and `store_down`).

- /healthz (liveness): 503 once the loop has not turned for `STALL_SECONDS`: a poll or a
  batch that hangs. Retrying while Redis is down counts as turning: a restart would not
  bring Redis back. Also 503 once the worker has made no progress for
  `worker_stall_seconds`: no batch, and no empty poll with the group settled (a rebalance
  that never completes, a group that rebalances over and over as in issue 17's storms,
  or never assigned since start); a restarted member often lets the group settle. Not
  while Redis is down (as above). Lag is not used: a broker that reports wrong end
  offsets (the development broker does) would make a healthy idle worker look stuck.
- /readyz (readiness): 200 once the loop has polled, unless Redis is failing or the
  worker is stopping. It does not wait for partitions: a worker beyond the partition
  count is idle by design and must not hold up a rollout.
- /metrics: this worker's counters (`vigil_worker_*`), read from `WorkerStats` when
  scraped, in a registry of its own (so several workers in one process never clash).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from pipeline.settings import Settings
from pipeline.worker.loop import Worker
from pipeline.worker.stats import BATCH_BUCKETS

STALL_SECONDS = 120.0
"""A loop that has not turned this long is hung. A poll returns within poll_timeout_ms or
a rebalance (session timeout, seconds), a batch of 50,000 records takes seconds; 120 s
leaves room for a slow node without leaving a stuck worker up for long."""

_COUNTERS = (
    ("records", "vigil_worker_records", "Kafka records polled by this worker."),
    ("applied", "vigil_worker_events_applied", "Events applied to stream states."),
    ("alerts", "vigil_worker_alerts", "Alerts published (counted at each checkpoint)."),
    ("streams_created", "vigil_worker_streams_created", "Streams seen for the first time."),
    ("states_reset", "vigil_worker_states_reset", "Unreadable stored states started afresh."),
    ("writes_refused", "vigil_worker_fencing_refusals",
     "State writes refused by fencing (newer state in Redis)."),
    ("store_retries", "vigil_worker_store_retries", "Redis calls retried after a failure."),
    ("model_swaps", "vigil_worker_model_swaps", "Switches to a newly promoted model version."),
    ("streams_reset", "vigil_worker_streams_reset",
     "Streams held in memory replaced after an operator reset them."),
    ("routed", "vigil_worker_routed", "Key-less events re-published keyed by stream id."),
    ("state_losses", "vigil_worker_state_losses", "Times Redis had forgotten states."),
    ("streams_restored", "vigil_worker_streams_restored",
     "States Redis had forgotten, restored from the changelog."),
)  # fmt: skip


class WorkerCollector(Collector):
    """Prometheus metrics made from a worker's `WorkerStats` at scrape time."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        stats = self.worker.stats
        for attribute, name, help_text in _COUNTERS:
            yield CounterMetricFamily(name, help_text, value=getattr(stats, attribute))
        dead = CounterMetricFamily(
            "vigil_worker_deadletters", "Records sent to the dead-letter topic.", labels=["reason"]
        )
        for reason, count in sorted(dict(stats.deadletters).items()):
            dead.add_metric([reason], count)
        yield dead
        buckets: list[tuple[str, float]] = [
            (repr(bound), count)
            for bound, count in zip(BATCH_BUCKETS, list(stats.batch_buckets), strict=True)
        ]
        buckets.append(("+Inf", stats.batches))
        yield HistogramMetricFamily(
            "vigil_worker_batch_duration_seconds",
            "Wall time of one batch: decode, detector, publish.",
            buckets=buckets,
            sum_value=stats.batch_seconds,
        )
        yield from self._sinks()

    def _sinks(self) -> Iterator[Metric]:
        """Alert sinks (`pipeline.sinks`): what each did with the alerts it was handed."""
        outcomes = CounterMetricFamily(
            "vigil_worker_sink_alerts",
            "Alerts handed to each sink, by outcome (failed: gave up after the retries; "
            "dropped: its queue was full).",
            labels=["sink", "outcome"],
        )
        queued = GaugeMetricFamily(
            "vigil_worker_sink_queue", "Alerts waiting in each sink's queue.", labels=["sink"]
        )
        for sender in self.worker.senders:
            name, st = sender.sink.name, sender.stats
            for outcome in ("delivered", "failed", "dropped", "silenced"):
                outcomes.add_metric([name, outcome], getattr(st, outcome))
            queued.add_metric([name], sender.pending())
        yield outcomes
        yield queued


def health(worker: Worker, now: float | None = None) -> tuple[int, dict[str, Any]]:
    """/healthz: the status code and body."""
    now = time.monotonic() if now is None else now
    if worker.turned_at is None:
        return 200, {"status": "starting"}
    idle = now - worker.turned_at
    if idle > STALL_SECONDS:
        return 503, {"status": "stalled", "seconds_since_loop_turned": round(idle, 1)}
    limit, quiet = worker.config.worker_stall_seconds, now - worker.progress_at
    if limit and quiet > limit and not worker.store_down:
        return 503, {"status": "no_progress", "seconds_without_progress": round(quiet, 1),
                     "rebalancing": worker.rebalancing_since is not None}  # fmt: skip
    return 200, {"status": "ok"}


def readiness(worker: Worker) -> tuple[int, dict[str, Any]]:
    """/readyz: the status code and body."""
    checks = {
        "loop": "stopping" if worker.stopping else
                "running" if worker.turned_at is not None else "starting",
        "redis": "failing" if worker.store_down else "ok",
        "state": "restoring" if worker.restoring else "ok",
    }  # fmt: skip
    ready = checks["loop"] == "running" and checks["redis"] == "ok" and checks["state"] == "ok"
    return 200 if ready else 503, {"ready": ready, "checks": checks}


def _handler(worker: Worker, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                return
            routes = {"/healthz": health, "/readyz": readiness}
            if path not in routes:
                self._send(404, b'{"detail": "not found"}', "application/json")
                return
            code, body = routes[path](worker)
            self._send(code, json.dumps(body).encode(), "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds are not news: no access log."""

    return Handler


def start_server(worker: Worker, settings: Settings) -> ThreadingHTTPServer | None:
    """Serve the worker's routes on settings.worker_http_host:port from a daemon thread
    (None when the port is 0). Raises OSError if the address cannot be bound."""
    if not settings.worker_http_port:
        return None
    registry = CollectorRegistry(auto_describe=True)
    registry.register(WorkerCollector(worker))
    address = (settings.worker_http_host, settings.worker_http_port)
    server = ThreadingHTTPServer(address, _handler(worker, registry))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="worker-http", daemon=True).start()
    return server


def stop_server(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()
