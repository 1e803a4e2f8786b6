"""Processes the local stack starts: who they are, and stopping only those.

Process identity and sockets are read with psutil, so the stack works wherever psutil does
(Linux, macOS) rather than only where /proc exists. A recorded process is ours only while
its pid, start time and executable all match the record: a pid reused by another program
is never signalled.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

STOP_TIMEOUT_S = 5.0


class StackError(Exception):
    """A local-stack problem the user can act on; the message is one line."""


def _identity(pid: int) -> tuple[float, str] | None:
    """(start time, executable) of a live process, None if it is gone, a zombie or not
    readable by us (then it is not a process we started either)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time(), proc.exe()
    except (psutil.Error, OSError):
        return None


@dataclass(frozen=True)
class ProcessRecord:
    """Enough to recognise a process we started even after its pid has been reused."""

    pid: int
    start_time: float  # seconds since the epoch, as psutil reports it
    exe: str  # the executable as read right after the start

    @classmethod
    def of(cls, pid: int) -> ProcessRecord:
        identity = _identity(pid)
        if identity is None:
            raise StackError(f"process {pid} exited right after it was started")
        return cls(pid, *identity)

    @classmethod
    def from_json(cls, data: Any) -> ProcessRecord:
        return cls(int(data["pid"]), float(data["start_time"]), str(data["exe"]))

    def is_running(self) -> bool:
        """True only while this very process (same pid, start time and binary) is alive."""
        return _identity(self.pid) == (self.start_time, self.exe)


def terminate(record: ProcessRecord, timeout: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM, then SIGKILL after `timeout`, but only if the process is still the one we
    recorded. Returns whether it was running (and is now stopped).

    psutil re-checks the process's start time before each signal, so a pid recycled
    between our check and the signal is not hit; `wait` also reaps our own child (tests,
    or `stack up` and `down` in one process) so it does not linger as a zombie.
    """
    if not record.is_running():
        return False
    try:
        proc = psutil.Process(record.pid)
        for stop in (proc.terminate, proc.kill):
            stop()
            try:
                proc.wait(timeout)
                return True
            except psutil.TimeoutExpired:
                continue
    except psutil.NoSuchProcess:
        return True
    raise StackError(f"process {record.pid} did not exit after SIGKILL")


def stop_child(proc: subprocess.Popen[bytes]) -> None:
    """Stop a child we hold a Popen for: SIGTERM, then SIGKILL after the timeout."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ChildGroup:
    """Servers started as children of this process in one scratch directory (the local
    stack, the local Redis Cluster): `stop()` ends them newest first and removes the
    directory; idempotent and safe after a failed start. A subclass starts the children
    (appending to `_procs`), and may forget more in `stop`."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self._workdir: Path | None = None

    def stop(self) -> None:
        for proc in reversed(self._procs):
            stop_child(proc)
        self._procs.clear()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when its parent dies (even by
    SIGKILL), so an aborted test session leaves no broker behind. Linux only (elsewhere
    the stack's children are stopped by LocalStack.stop). PR_SET_PDEATHSIG fires when the
    creating *thread* exits: start LocalStack from a long-lived thread."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork, not in the child
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


def owns_listener(pid: int, host: str, port: int) -> bool:
    """Whether `pid` itself holds a listening TCP socket on host:port.

    "Something accepts connections there" is not enough: a second Tansu on a busy port
    prints its banner, logs an error and exits 0, while a connect() would happily reach
    whoever owns the port.
    """
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return False
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.ip == host and c.laddr.port == port
        for c in connections
    )
