"""The local stack against the real binaries: start, stop, busy ports, and the detached
stack's refusal to signal processes it cannot prove it started."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import psutil
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.cli.flags import with_recorded_stack
from pipeline.kafka.topics import ensure_topics
from pipeline.local import services
from pipeline.local.stack import (
    LocalStack,
    ProcessRecord,
    StackAlreadyRunning,
    StackError,
    StackInfo,
    stack_down,
    stack_status,
    stack_up,
)
from pipeline.settings import stack_file
from pipeline.settings_loader import load_settings


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other program is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not ours to stop (as far as stack_down can know)."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def _one_line(exc: pytest.ExceptionInfo[StackError]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def test_session_stack_broker_and_redis_answer(
    stack: StackInfo, redis_client: redis.Redis, topic_names: Callable[[str], str]
) -> None:
    topic = topic_names("events")
    ensure_topics(stack.bootstrap_servers, {topic: 1})
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap_servers)
    producer.send(topic, key=b"stream-1", value=b'{"value": 1.5}').get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap_servers, auto_offset_reset="earliest"
    )
    consumer.assign([TopicPartition(topic, 0)])
    records = []
    for _ in range(50):
        records += [r for batch in consumer.poll(200).values() for r in batch]
        if records:
            break
    consumer.close()
    assert [(r.key, r.value) for r in records] == [(b"stream-1", b'{"value": 1.5}')]

    assert redis_client.ping()
    redis_client.set("vigil:probe", b"\x00bytes")
    assert redis_client.get("vigil:probe") == b"\x00bytes"


def test_local_stack_stop_ends_both_processes_and_cleans_up() -> None:
    local = LocalStack()
    info = local.start()
    assert info.broker.is_running() and info.redis.is_running()
    assert Path(info.log_dir).is_dir()
    assert redis.Redis.from_url(info.redis_url).ping()

    local.stop()
    assert not info.broker.is_running()
    assert not info.redis.is_running()
    assert not Path(info.log_dir).exists()
    local.stop()  # idempotent
    with pytest.raises(StackError):
        _ = local.info


@pytest.mark.parametrize("which", ["kafka_port", "redis_port"])
def test_busy_port_is_a_one_line_error(busy_port: int, which: str) -> None:
    local = LocalStack(**{which: busy_port})
    with pytest.raises(StackError) as exc:
        local.start()
    assert _one_line(exc) == f"port {busy_port} is already in use"


def test_broker_losing_the_port_race_is_detected(busy_port: int, tmp_path: Path) -> None:
    # Skip the free-port check to reproduce the race it cannot close: Tansu on a busy port
    # logs an error and exits 0, which must not be mistaken for a ready broker.
    with pytest.raises(StackError) as exc:
        services.launch(services.broker(), busy_port, tmp_path, detached=False)
    message = _one_line(exc)
    assert message.startswith("broker exited during start-up:")
    assert "in use" in message.lower()


def test_stack_up_records_the_stack_and_down_stops_it(
    vigil_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    info = stack_up()
    try:
        recorded = json.loads(stack_file().read_text())
        assert recorded["bootstrap_servers"] == info.bootstrap_servers
        assert recorded["redis_url"] == info.redis_url
        settings = with_recorded_stack(load_settings())
        assert settings.kafka_bootstrap() == info.bootstrap_servers
        assert settings.redis_address() == info.redis_url
        assert redis.Redis.from_url(info.redis_url).ping()
        assert stack_status() == info
        assert info.is_running()

        with pytest.raises(StackAlreadyRunning) as exc:
            stack_up()
        assert "already running" in _one_line(exc) and exc.value.info == info
    finally:
        stopped = stack_down()

    assert stopped == info
    for record in (info.broker, info.redis):
        assert not record.is_running()
        assert not psutil.pid_exists(record.pid)  # stopped and reaped
    assert not stack_file().exists()
    assert stack_status() is None
    assert stack_down() is None
    assert list(workdir.iterdir()) == []  # no dump files or logs in the cwd
    assert (vigil_home / "broker.log").exists()


def test_stack_up_on_a_busy_port_starts_nothing(busy_port: int) -> None:
    with pytest.raises(StackError) as exc:
        stack_up(kafka_port=busy_port)
    assert _one_line(exc) == f"port {busy_port} is already in use"
    assert not stack_file().exists()


def _write_stack_file(broker: dict[str, object], redis_: dict[str, object]) -> None:
    stack_file().parent.mkdir(parents=True, exist_ok=True)
    stack_file().write_text(
        json.dumps(
            {
                "bootstrap_servers": "127.0.0.1:1",
                "redis_url": "redis://127.0.0.1:2/0",
                "broker": broker,
                "redis": redis_,
                "log_dir": "/nonexistent",
            }
        )
    )


def test_down_never_signals_a_process_whose_identity_differs(
    sleeper: subprocess.Popen[bytes],
) -> None:
    real = ProcessRecord.of(sleeper.pid)
    _write_stack_file(
        broker=asdict(real) | {"start_time": real.start_time + 1},  # pid reused later
        redis_=asdict(real) | {"exe": "/usr/bin/not-" + Path(real.exe).name},
    )
    assert stack_status() is None
    assert stack_down() is None
    assert sleeper.poll() is None, "stack_down signalled a process it did not start"
    assert not stack_file().exists()

    # The same process, recorded faithfully, is stopped: the identity check is what spared it.
    _write_stack_file(broker=asdict(real), redis_=asdict(real))
    assert stack_down() is not None
    assert not real.is_running()


def test_stale_and_corrupt_records_are_just_removed(sleeper: subprocess.Popen[bytes]) -> None:
    real = ProcessRecord.of(sleeper.pid)
    sleeper.kill()
    sleeper.wait()
    _write_stack_file(broker=asdict(real), redis_=asdict(real))
    assert stack_status() is None
    assert stack_down() is None
    assert not stack_file().exists()

    stack_file().write_text("{not json")
    assert stack_status() is None
    assert stack_down() is None
    assert not stack_file().exists()
