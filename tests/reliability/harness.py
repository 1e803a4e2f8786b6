"""What every fault-injection test needs: the data, worker processes and threads, the
reference run and the exact comparison against it.

A fault test runs workers over a topic while something breaks; the reference is one
uninterrupted in-process worker over the same topic with its own group, Redis prefix and
alerts topic. Both must end with the same offsets, counts and alert ids, and hidden
states equal to float tolerance (a batched matmul may differ in the last bits with the
batch's size).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import redis
from kafka import KafkaConsumer, TopicPartition

from pipeline.contracts.alerts import Alert
from pipeline.kafka.backends import make_sink, make_source
from pipeline.kafka.base import EventSource
from pipeline.local.stack import free_port, redis_binary
from pipeline.models.serving import build_detector
from pipeline.settings import Settings
from pipeline.settings_loader import load_settings
from pipeline.state.base import StateStore
from pipeline.state.redis import open_store
from pipeline.worker.loop import Worker
from pipeline.worker.stats import WorkerStats
from pipeline.worker.wiring import assemble_worker, create_topics
from tests.pipeline.kafka.helpers import read_all, sensor_events

N_STREAMS, PER_STREAM, SPIKE_AT = 120, 70, 60
TOTAL = N_STREAMS * PER_STREAM
STREAMS = [f"s-{i:04d}" for i in range(N_STREAMS)]
LAYOUT = build_detector(load_settings(None)).layout


def events(seed: int) -> list[tuple[bytes, bytes]]:
    """TOTAL sensor events, round-robin over STREAMS, each stream spiking once."""
    return sensor_events(N_STREAMS, PER_STREAM, seed=seed, spike_at=SPIKE_AT)


def fault_settings(
    bootstrap: str, redis_url: str, topic: Callable[[str], str], **extra: Any
) -> Settings:
    """Settings for one run: its own topics, group and Redis prefix."""
    run = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "redis_url": redis_url,
        "events_topic": topic("events"),
        "alerts_topic": topic("alerts"),
        "deadletter_topic": topic("deadletter"),
        "changelog_topic": topic("changelog"),
        "group_id": f"g-{run}",
        "redis_prefix": f"t-{run}",
        "topic_partitions": 4,
        "poll_timeout_ms": 100,
        "max_poll_records": 200,
        # Checkpoints of several batches each, and many of them in a run: a kill lands
        # between a checkpoint's batches as often as between checkpoints.
        "commit_interval_ms": 100,
    }
    values.update(extra)
    s = load_settings(None, **values)
    create_topics(s)
    return s


# --- observing a run ---------------------------------------------------------------


def states(s: Settings, streams: list[str] = STREAMS) -> tuple[np.ndarray, np.ndarray]:
    return LAYOUT.decode(open_store(s).load(streams))


def applied(s: Settings, streams: list[str] = STREAMS) -> int:
    st, known = states(s, streams)
    return int(st["count"][known].sum())


def alert_ids(s: Settings) -> set[str]:
    return {Alert.from_json(r.value).id for r in read_all(s.bootstrap_servers, s.alerts_topic)}


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, alive: Callable[[], str | None]
) -> None:
    """Poll `condition`; fail with `what` after `timeout` (with the running workers' log
    tails, to see what they were doing), or at once when `alive()` reports a dead worker."""
    deadline = time.monotonic() + timeout
    while not condition():
        dead = alive()
        assert dead is None, dead
        assert time.monotonic() < deadline, f"timed out waiting for {what}{running_logs()}"
        time.sleep(0.05)


# --- the reference run and the comparison --------------------------------------------


def reference(
    run: Settings, topic: Callable[[str], str], streams: list[str] = STREAMS, total: int = TOTAL
) -> tuple[np.ndarray, set[str]]:
    """One uninterrupted worker over `run`'s events topic, on its own group and prefix."""
    ref = fault_settings(
        run.bootstrap_servers,
        run.redis_url.get_secret_value(),
        topic,
        events_topic=run.events_topic,
        topic_partitions=run.topic_partitions,  # its changelog as wide as the events topic
        max_poll_records=2000,
        warmup_events=run.warmup_events,
    )
    worker = in_process_worker(ref)
    worker.run(max_records=total, idle_exit_s=30)
    st, known = states(ref, streams)
    assert known.all()
    return st, alert_ids(ref)


def assert_same_states(st: np.ndarray, ref: np.ndarray) -> None:
    """Every field of every state: integers and bytes exactly, floats to the tolerance a
    batched matmul of another batch size leaves (float16 fields to their own precision)."""
    for name in st.dtype.names or ():
        kind = st.dtype[name].base
        if kind.kind != "f":
            assert (st[name] == ref[name]).all(), name
        else:
            tol = 2e-3 if kind.itemsize == 2 else 1e-4
            a, b = st[name].astype(np.float64), ref[name].astype(np.float64)
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=name)


def assert_same_as_reference(
    run: Settings, topic: Callable[[str], str], streams: list[str] = STREAMS, total: int = TOTAL
) -> None:
    """The run's states and alerts equal one uninterrupted run's, exactly."""
    st, known = states(run, streams)
    assert known.all()
    assert int(st["count"].sum()) == total  # nothing lost, nothing applied twice
    ref_states, ref_alerts = reference(run, topic, streams, total)
    assert_same_states(st, ref_states)
    assert alert_ids(run) == ref_alerts
    assert len(ref_alerts) >= min(len(streams) // 2, 50)  # the spikes are there to be found


# --- workers -------------------------------------------------------------------------


def in_process_worker(
    s: Settings, store: StateStore | None = None, source: EventSource | None = None
) -> Worker:
    return assemble_worker(
        s,
        source if source is not None else make_source(s, [s.events_topic]),
        make_sink(s),
        store if store is not None else open_store(s),
        build_detector(s),
    )


class WorkerThread:
    """A Worker running in a thread; `error` holds whatever ended it abnormally."""

    def __init__(self, worker: Worker, idle_exit_s: float | None = None) -> None:
        self.worker = worker
        self.error: BaseException | None = None
        self.stats: WorkerStats | None = None
        self._thread = threading.Thread(target=self._run, args=(idle_exit_s,), daemon=True)
        self._thread.start()

    def _run(self, idle_exit_s: float | None) -> None:
        try:
            self.stats = self.worker.run(idle_exit_s=idle_exit_s)
        except BaseException as exc:
            self.error = exc

    def problem(self) -> str | None:
        if self.error is not None:
            return f"worker died: {self.error!r}"
        if not self._thread.is_alive() and self.stats is None:
            return "worker thread ended without stats"
        return None

    def stop(self, timeout: float = 30.0) -> WorkerStats:
        self.worker.stop()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "worker did not stop"
        assert self.error is None, f"worker died: {self.error!r}"
        assert self.stats is not None
        return self.stats


def worker_env(s: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update(
        VIGIL_HOME=os.environ["VIGIL_HOME"],
        VIGIL_BOOTSTRAP_SERVERS=s.bootstrap_servers,
        VIGIL_REDIS_URL=s.redis_url.get_secret_value(),
        VIGIL_EVENTS_TOPIC=s.events_topic,
        VIGIL_ALERTS_TOPIC=s.alerts_topic,
        VIGIL_DEADLETTER_TOPIC=s.deadletter_topic,
        VIGIL_CHANGELOG_TOPIC=s.changelog_topic,
        VIGIL_WARMUP_EVENTS=str(s.warmup_events),
        VIGIL_KAFKA_BACKEND=s.kafka_backend,
        VIGIL_GROUP_ID=s.group_id,
        VIGIL_REDIS_PREFIX=s.redis_prefix,
        VIGIL_MAX_POLL_RECORDS=str(s.max_poll_records),
        VIGIL_POLL_TIMEOUT_MS=str(s.poll_timeout_ms),
        VIGIL_COMMIT_INTERVAL_MS=str(s.commit_interval_ms),
        VIGIL_SESSION_TIMEOUT_MS=str(s.session_timeout_ms),
    )
    return env


class WorkerProcess(subprocess.Popen[bytes]):
    """A `vigil worker` process whose stderr goes to a file, read whenever a test needs it:
    a pipe that nobody reads while the worker runs would block the worker's next log line
    once the pipe's buffer is full."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        fd, name = tempfile.mkstemp(prefix="vigil-worker-", suffix=".log")
        os.close(fd)
        self.log_path = Path(name)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            super().__init__(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
        _RUNNING.add(self)

    def log_text(self, tail: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-tail:].decode(errors="replace")
        except FileNotFoundError:
            return ""

    def forget(self) -> None:
        """The process has ended and its log was read: remove the file."""
        _RUNNING.discard(self)
        self.log_path.unlink(missing_ok=True)


_RUNNING: weakref.WeakSet[WorkerProcess] = weakref.WeakSet()


def running_logs() -> str:
    """The log tails of every worker process still running ('' when there is none)."""
    live = [proc for proc in list(_RUNNING) if proc.poll() is None]
    return "".join(f"\n--- worker {p.pid} log ---\n{p.log_text()}" for p in live)


def spawn_worker(s: Settings, idle_exit: float = 60.0) -> WorkerProcess:
    """A real `vigil worker` process (see WorkerProcess for where its stderr goes)."""
    argv = [sys.executable, "-m", "pipeline.cli.main", "worker", "--idle-exit", str(idle_exit)]
    return WorkerProcess(argv, worker_env(s))


def process_problem(procs: list[WorkerProcess]) -> str | None:
    """A message if any process has exited (they should all be running)."""
    for proc in procs:
        if proc.poll() is not None:
            return f"worker {proc.pid} exited with {proc.returncode}: {proc.log_text()}"
    return None


def catches_sigterm(pid: int) -> bool:
    """Whether the process has installed its SIGTERM handler yet (Linux: SigCgt mask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (signal.SIGTERM - 1) & 1)


def stop_process(proc: WorkerProcess, timeout: float = 30.0) -> str:
    """SIGTERM (finish the batch, commit, leave), wait, return its log; must exit 0.

    A worker spawned a moment ago may still be starting Python: the signal is sent once
    it handles SIGTERM, since before that there is nothing to stop cleanly."""
    wait_until(lambda: proc.poll() is not None or catches_sigterm(proc.pid), 30,
               "the worker handles SIGTERM", lambda: None)  # fmt: skip
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"worker {proc.pid} did not stop on SIGTERM: "
                             f"{proc.log_text()}") from None  # fmt: skip
    text = proc.log_text(tail=1 << 20)
    assert proc.returncode == 0, f"worker exited with {proc.returncode}: {text[-2000:]}"
    proc.forget()
    return text


def kill_all(procs: list[WorkerProcess]) -> None:
    """Cleanup after a failure: no worker outlives its test."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.forget()


# --- a Redis of the test's own ---------------------------------------------------------


class OwnRedis:
    """A redis-server of one test's own (its own port and directory), to stop, kill and
    start again without touching the session's Redis."""

    def __init__(self, workdir: Path, *options: str) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._argv = [str(redis_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
                      "--dir", str(workdir), "--loglevel", "warning", *options]  # fmt: skip
        self._log = workdir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def start(self) -> None:
        with open(self._log, "ab") as log:
            self._proc = subprocess.Popen(self._argv, stdout=log, stderr=subprocess.STDOUT)
        client = self.client()
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:  # BusyLoadingError included
                assert self._proc.poll() is None, self._log.read_text()[-1000:]
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        """SIGTERM: Redis finishes writing its files, then exits."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(15)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL: whatever is only in memory is gone."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(15)
        self._proc = None


def committed(s: Settings) -> int:
    """Sum of the group's committed offsets over the events topic's partitions."""
    consumer = KafkaConsumer(bootstrap_servers=s.bootstrap_servers, group_id=s.group_id,
                             enable_auto_commit=False)  # fmt: skip
    try:
        return sum(consumer.committed(TopicPartition(s.events_topic, p)) or 0
                   for p in range(s.topic_partitions))  # fmt: skip
    finally:
        consumer.close()
