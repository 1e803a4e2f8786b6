"""Local HTTP receivers for the sink tests: an Alertmanager v2 API and a flaky webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

POSTABLE_KEYS = {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}


class Received:
    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.lock = threading.Lock()


def _alertmanager_problem(body: Any) -> str | None:
    """What the Alertmanager v2 API would refuse in a POST /api/v2/alerts body."""
    if not isinstance(body, list):
        return "body must be a list of postable alerts"
    for alert in body:
        if not isinstance(alert, dict) or set(alert) - POSTABLE_KEYS:
            return f"unknown keys {set(alert) - POSTABLE_KEYS}"
        labels = alert.get("labels")
        if (
            not isinstance(labels, dict)
            or not labels
            or not all(isinstance(v, str) for v in labels.values())
        ):
            return "labels must be a non-empty map of strings"
        if not all(isinstance(v, str) for v in alert.get("annotations", {}).values()):
            return "annotations must be strings"
    return None


def _handler(received: Received, path: str, alertmanager: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with received.lock:
                received.attempts += 1
                failing = received.attempts <= received.fail_first
            body = json.loads(raw)
            problem = _alertmanager_problem(body) if alertmanager else None
            if self.path != path:
                status = 404
            elif failing:
                status = 503
            elif problem:
                status = 400
            else:
                status = 200
                with received.lock:
                    received.bodies.append(body)
                    received.headers.append(dict(self.headers))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    return Handler


@contextmanager
def receiver(
    path: str, alertmanager: bool = False, fail_first: int = 0
) -> Iterator[tuple[str, Received]]:
    received = Received(fail_first)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(received, path, alertmanager))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
