"""The broker restarted under a running worker, on both Kafka backends.

Tansu keeps data in memory unless it is given `s3://` storage, so this test starts its own
Tansu against a local S3 stand-in (moto's server) with a bucket made first: topics,
records and committed offsets then survive the restart. The worker keeps running through
the outage (its client reconnects) and must finish with exactly one uninterrupted run's
states and alerts.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.local.stack import StackInfo, free_port, tansu_binary
from tests.pipeline.kafka.helpers import produce
from tests.reliability.harness import (
    TOTAL,
    WorkerThread,
    applied,
    assert_same_as_reference,
    events,
    fault_settings,
    in_process_worker,
    wait_until,
)

HOST = "127.0.0.1"
BUCKET = "tansu"
AWS = {"AWS_ACCESS_KEY_ID": "vigil", "AWS_SECRET_ACCESS_KEY": "vigil-secret",
       "AWS_DEFAULT_REGION": "eu-west-2"}  # fmt: skip


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, f"exited during start-up: {log.read_text()[-1000:]}"
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
        except OSError:
            assert time.monotonic() < deadline, f"not listening on {port}: {log}"
            time.sleep(0.05)
            continue
        # A Tansu on a busy port exits 0 after its banner: check it is still ours and alive.
        time.sleep(0.1)
        assert proc.poll() is None, f"exited during start-up: {log.read_text()[-1000:]}"
        return


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class S3Broker:
    """Tansu with s3:// storage on a moto server, both children of this test."""

    def __init__(self, workdir: Path) -> None:
        moto = shutil.which("moto_server", path=os.path.dirname(sys.executable))
        assert moto, "moto_server not found: pip install 'moto[server]'"
        self.workdir = workdir
        self.s3_port, self.port = free_port(), free_port()
        self.bootstrap = f"{HOST}:{self.port}"
        endpoint = f"http://{HOST}:{self.s3_port}"
        log = workdir / "moto.log"
        with open(log, "wb") as out:
            self._moto = subprocess.Popen([moto, "-H", HOST, "-p", str(self.s3_port)],
                                          stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        _wait_listening(self._moto, self.s3_port, log)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=AWS["AWS_DEFAULT_REGION"],
                          aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={
            "LocationConstraint": AWS["AWS_DEFAULT_REGION"]})  # fmt: skip
        self._env = {"PATH": os.environ.get("PATH", ""), "NO_COLOR": "1", **AWS,
                     "AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true"}  # fmt: skip
        self._tansu: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        url = f"tcp://{self.bootstrap}"
        self.starts += 1
        log = self.workdir / f"tansu-{self.starts}.log"
        with open(log, "wb") as out:
            self._tansu = subprocess.Popen(
                [str(tansu_binary()), "broker", "--listener-url", url,
                 "--advertised-listener-url", url, "--storage-engine", f"s3://{BUCKET}/"],
                env=self._env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        _wait_listening(self._tansu, self.port, log)

    def stop_broker(self) -> None:
        if self._tansu is not None:
            _stop(self._tansu)
            self._tansu = None

    def close(self) -> None:
        self.stop_broker()
        _stop(self._moto)


@pytest.fixture
def s3_broker(tmp_path: Path) -> Iterator[S3Broker]:
    broker = S3Broker(tmp_path)
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.mark.parametrize("backend", ["kafka-python", "confluent"])
def test_worker_survives_a_broker_restart(
    stack: StackInfo, topic_names: Any, s3_broker: S3Broker, backend: str
) -> None:
    s = fault_settings(s3_broker.bootstrap, stack.redis_url, topic_names, kafka_backend=backend)
    data = events(seed=41)
    half = TOTAL // 2
    produce(s.bootstrap_servers, s.events_topic, data[:half])
    run = WorkerThread(in_process_worker(s))
    try:
        wait_until(lambda: applied(s) >= half, 60, "first half applied", run.problem)
        s3_broker.stop_broker()
        time.sleep(2.0)
        s3_broker.start()
        produce(s.bootstrap_servers, s.events_topic, data[half:])
        wait_until(lambda: applied(s) >= TOTAL, 90, "all events applied", run.problem)
    finally:
        stats = run.stop()
    assert stats.applied >= TOTAL - half  # this one worker did the work, through the restart
    assert_same_as_reference(s, topic_names)
