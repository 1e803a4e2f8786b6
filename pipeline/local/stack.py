"""The local development stack: a Kafka-protocol broker (Tansu) and a real redis-server.

Two ways to run it:

- `LocalStack`, a context manager whose children live and die with the Python process
  (the test session, `vigil demo`);
- `stack_up` / `stack_status` / `stack_down`, for `vigil stack up|status|down`: detached
  daemons recorded in `settings.stack_file()`, which is also where the CLI
  (`pipeline.cli.flags`) finds the broker and Redis addresses when none are configured.

How each server is started is in `services`, how processes are recognised and stopped in
`processes` (psutil: Linux and macOS).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.local.processes import ChildGroup, ProcessRecord, StackError, stop_child, terminate
from pipeline.local.services import (
    HOST,
    check_port,
    free_port,
    port_is_free,
    redis_binary,
    services,
    start,
    tansu_binary,
)
from pipeline.settings import stack_file, vigil_home

__all__ = [
    "LocalStack",
    "ProcessRecord",
    "StackAlreadyRunning",
    "StackError",
    "StackInfo",
    "free_port",
    "port_is_free",
    "redis_binary",
    "stack_down",
    "stack_status",
    "stack_up",
    "tansu_binary",
]


class StackAlreadyRunning(StackError):
    """`stack_up` found a recorded stack still running; `info` says where it is."""

    def __init__(self, info: StackInfo) -> None:
        super().__init__(
            f"a local stack is already running (Kafka {info.bootstrap_servers}, Redis "
            f"{info.redis_url}); `vigil stack down` stops it"
        )
        self.info = info


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


def _info(broker: int, broker_port: int, redis: int, redis_port: int, logs: Path) -> StackInfo:
    return StackInfo(
        bootstrap_servers=f"{HOST}:{broker_port}",
        redis_url=f"redis://{HOST}:{redis_port}/0",
        broker=ProcessRecord.of(broker),
        redis=ProcessRecord.of(redis),
        log_dir=str(logs),
    )


# --- in-process stack ----------------------------------------------------------------


class LocalStack(ChildGroup):
    """Broker + Redis as children of this process, for tests and `vigil demo`.

    Data is in memory only and the scratch directory is removed on stop().
    """

    def __init__(self, kafka_port: int | None = None, redis_port: int | None = None) -> None:
        super().__init__()
        self._ports = (kafka_port, redis_port)
        self._info: StackInfo | None = None

    @property
    def info(self) -> StackInfo:
        if self._info is None:
            raise StackError("the local stack is not running")
        return self._info

    def start(self) -> StackInfo:
        if self._info is not None:
            return self._info
        broker, redis = services()
        kafka_port, redis_port = self._ports
        for port in (kafka_port, redis_port):
            if port is not None:
                check_port(port)  # both, before either starts
        self._workdir = Path(tempfile.mkdtemp(prefix="vigil-stack-"))
        try:
            broker_proc, kafka_port = start(broker, kafka_port, self._workdir, detached=False)
            self._procs.append(broker_proc)
            redis_proc, redis_port = start(redis, redis_port, self._workdir, detached=False)
            self._procs.append(redis_proc)
            self._info = _info(broker_proc.pid, kafka_port, redis_proc.pid, redis_port,
                               self._workdir)  # fmt: skip
        except BaseException:
            self.stop()
            raise
        return self._info

    def stop(self) -> None:
        super().stop()
        self._info = None

    def __enter__(self) -> StackInfo:
        return self.start()


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
        raise StackAlreadyRunning(running)
    broker, redis = services()
    for port in (kafka_port, redis_port):
        if port is not None:
            check_port(port)
    home = vigil_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StackError(f"cannot create {home}: {exc.strerror}") from None
    started: list[subprocess.Popen[bytes]] = []
    try:
        broker_proc, kafka_port = start(broker, kafka_port, home, detached=True)
        started.append(broker_proc)
        redis_proc, redis_port = start(redis, redis_port, home, detached=True)
        started.append(redis_proc)
        info = _info(broker_proc.pid, kafka_port, redis_proc.pid, redis_port, home)
        _write_record(info)
    except BaseException:
        for proc in started:
            stop_child(proc)
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
            stopped |= terminate(record)
    with contextlib.suppress(FileNotFoundError):
        stack_file().unlink()
    return info if stopped else None
