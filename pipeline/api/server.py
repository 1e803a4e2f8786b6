"""Serve the app with uvicorn, refusing an open address without a token (`vigil api`)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from types import FrameType
from typing import Any

import uvicorn

from pipeline.settings import Settings, SettingsError


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 / ::1; any other name or address is open."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name could resolve anywhere


def check_exposure(settings: Settings, host: str) -> None:
    if not is_loopback(host) and not settings.api_token.get_secret_value():
        raise SettingsError(
            f"refusing to serve the API on {host} without a token: set VIGIL_API_TOKEN "
            "or bind to 127.0.0.1"
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket for the API, bound here rather than by uvicorn so that a busy
    port is one line (SettingsError) instead of uvicorn's four log lines and a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "the port is in use" if exc.errno == 98 or "in use" in str(exc) else exc.strerror
        raise SettingsError(f"cannot serve the API on {host}:{port}: {reason}") from None
    return sock


SHUTDOWN_GRACE_S = 10
"""Seconds a stopping API lets open requests finish before it cancels them (a backstop:
the live feeds are ended at once, see `_Server`)."""


def _server(settings: Settings, log_level: str) -> uvicorn.Server:
    from pipeline.api.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(
        app, log_level=log_level, proxy_headers=False, lifespan="on",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )  # fmt: skip
    return _Server(config, app)


class _Server(uvicorn.Server):
    """uvicorn's server, ending the live feeds when asked to stop: their clients never
    close a stream themselves, and uvicorn waits for every open request before it stops
    (Kubernetes would kill the pod after its grace period instead)."""

    def __init__(self, config: uvicorn.Config, app: Any) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        feed = getattr(self.app.state, "live_feed", None)
        if feed is not None:
            feed.end_clients()
        super().handle_exit(sig, frame)


def run_api(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    """Serve until interrupted; returns the exit status. Raises SettingsError (one line)
    for an open host without a token, a busy port or a missing Redis address."""
    bind_host = host or settings.api_host
    bind_port = port or settings.api_port
    check_exposure(settings, bind_host)
    server = _server(settings, "info")
    sock = bind(bind_host, bind_port)
    server.run(sockets=[sock])
    return 0


def serve_in_background(settings: Settings, sock: socket.socket) -> uvicorn.Server:
    """The API on an already bound socket, in a daemon thread (for `vigil demo`); set
    `server.should_exit = True` to stop it. Access logs are off: they would cover the
    demo's screen."""
    check_exposure(settings, str(sock.getsockname()[0]))
    server = _server(settings, "warning")
    server.config.access_log = False
    threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="vigil-api"
    ).start()
    return server
