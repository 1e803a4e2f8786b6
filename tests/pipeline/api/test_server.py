"""`vigil api` binding its port: a busy port is one line and exit 2, not uvicorn's logs."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from pipeline.api.server import bind, serve_in_background
from pipeline.cli.main import main
from pipeline.local.stack import StackInfo
from pipeline.settings import SettingsError
from pipeline.settings_loader import load_settings


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_a_busy_port_is_one_line_and_exit_2(
    stack: StackInfo, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["api", "--redis-url", stack.redis_url, "--port", str(busy_port)])
    err = capsys.readouterr().err
    assert status == 2
    assert err == f"vigil: cannot serve the API on 127.0.0.1:{busy_port}: the port is in use\n"


def test_bind_refuses_a_busy_port(busy_port: int) -> None:
    with pytest.raises(SettingsError, match="the port is in use"):
        bind("127.0.0.1", busy_port)


def test_the_api_serves_in_the_background_on_a_bound_socket(stack: StackInfo) -> None:
    settings = load_settings(None, redis_url=stack.redis_url,
                             bootstrap_servers=stack.bootstrap_servers)  # fmt: skip
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = serve_in_background(settings, sock)
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        server.should_exit = True
