"""A worker started before Redis or the broker waits for them (real processes)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.local.stack import StackInfo, free_port
from pipeline.state.redis import open_store
from pipeline.worker.wiring import create_topics
from tests.pipeline.kafka.helpers import produce, sensor_events, test_settings
from tests.reliability.harness import LAYOUT, OwnRedis, worker_env


def start_worker(env: dict[str, str], log: Path, idle_exit: float = 8.0) -> subprocess.Popen[bytes]:
    with open(log, "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli.main", "worker", "--idle-exit", str(idle_exit)],
            env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip


def wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"worker exited {proc.returncode}: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no {text!r} in: {log.read_text()[-2000:]}"
        time.sleep(0.1)


def test_a_worker_started_before_redis_waits_for_it_then_runs(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    late = OwnRedis(tmp_path, "--appendonly", "yes", "--appendfsync", "always", "--save", "")
    s = test_settings(stack, topic_names, redis_url=late.url)
    create_topics(s)
    produce(s.bootstrap_servers, s.events_topic, sensor_events(4, 5, spike_at=None))
    log = tmp_path / "worker.log"
    proc = start_worker(worker_env(s), log)
    try:
        wait_for_line(log, f"waiting for Redis at 127.0.0.1:{late.port}", proc, 60)
        late.start()
        assert proc.wait(timeout=90) == 0, log.read_text()[-2000:]
        states, known = LAYOUT.decode(open_store(s).load([f"s-{i:04d}" for i in range(4)]))
        assert known.all() and states["count"].tolist() == [5, 5, 5, 5]
    finally:
        if proc.poll() is None:
            proc.kill()
        late.stop()


def test_redis_that_never_comes_is_one_line_and_exit_2(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    port = free_port()
    s = test_settings(stack, topic_names, redis_url=f"redis://:secret@127.0.0.1:{port}/0")
    env = {**worker_env(s), "VIGIL_STARTUP_WAIT_SECONDS": "2"}
    log = tmp_path / "worker.log"
    proc = start_worker(env, log)
    assert proc.wait(timeout=60) == 2
    text = log.read_text()
    assert "Traceback" not in text and "secret" not in text
    assert "waiting for Redis at 127.0.0.1" in text
    last = text.strip().splitlines()[-1]
    assert last.startswith(f"vigil: Redis at 127.0.0.1:{port} unreachable (gave up after 2 s")


def test_a_broker_that_never_comes_is_one_line_and_exit_2(
    stack: StackInfo, topic_names: Any, tmp_path: Path
) -> None:
    s = test_settings(stack, topic_names)
    env = {**worker_env(s), "VIGIL_STARTUP_WAIT_SECONDS": "8",
           "VIGIL_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}  # fmt: skip
    log = tmp_path / "worker.log"
    proc = start_worker(env, log)
    assert proc.wait(timeout=60) == 2
    text = log.read_text()
    assert "Traceback" not in text
    assert "waiting for Kafka at 127.0.0.1" in text
    assert text.strip().splitlines()[-1].startswith("vigil: Kafka at 127.0.0.1:")
