"""The `vigil` command line as a user meets it: version, help, and one-line failures."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.cli.main import EXAMPLES, build_parser, main
from pipeline.local.stack import StackInfo, stack_down


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("vigil 0.")


def test_every_command_has_a_description_defaults_and_an_example() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == set(EXAMPLES)
    for name, sub in commands.items():
        text = sub.format_help()
        assert sub.description, name
        assert f"example:\n  {EXAMPLES[name].split()[0]}" in text, name
        assert "(default: None)" not in text, name
    demo = commands["demo"].format_help()
    assert "--accounts ACCOUNTS   transaction streams (default: 1000)" in demo


@pytest.fixture
def dead_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_redis_unreachable_is_one_line_and_exit_2(
    dead_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["models", "list", "--redis-url", f"redis://127.0.0.1:{dead_port}/0"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("vigil: Redis unavailable: ")
    assert err.count("Redis unavailable") == 1


def test_broker_unreachable_ends_with_one_line_and_exit_2(
    stack: StackInfo,
    dead_port: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIGIL_STARTUP_WAIT_SECONDS", "0")  # give up at the first try
    argv = ["worker", "--bootstrap-servers", f"127.0.0.1:{dead_port}",
            "--redis-url", stack.redis_url]  # fmt: skip
    status = main(argv)
    last = capsys.readouterr().err.splitlines()[-1]
    assert status == 2
    assert last.startswith("vigil: ") and f"127.0.0.1:{dead_port}" in last


@pytest.fixture
def recorded_stack() -> Iterator[None]:
    try:
        yield
    finally:
        stack_down()


def test_stack_up_twice_says_so_and_exits_0(
    recorded_stack: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stack", "up"]) == 0
    first = capsys.readouterr().out
    assert main(["stack", "up"]) == 0
    again = capsys.readouterr().out
    assert again.startswith("a local stack is already running")
    assert first.splitlines()[0] in again  # the same broker address, not a second stack
    assert main(["stack", "down"]) == 0


@pytest.mark.parametrize("json_logs", [False, True])
def test_the_worker_logs_progress_at_info_without_verbose(
    stack: StackInfo,
    topic_names: Any,
    json_logs: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VIGIL_PROGRESS_LOG_SECONDS", "0.5")
    # This test's own changelog and Redis prefix: the defaults are shared by the session.
    monkeypatch.setenv("VIGIL_CHANGELOG_TOPIC", topic_names("changelog"))
    monkeypatch.setenv("VIGIL_REDIS_PREFIX", f"t-{uuid.uuid4().hex[:8]}")
    argv = ["--log-json"] if json_logs else []
    argv += ["worker", "--bootstrap-servers", stack.bootstrap_servers,
             "--redis-url", stack.redis_url, "--topic", topic_names("events"),
             "--group", topic_names("group"), "--idle-exit", "2"]  # fmt: skip
    assert main(argv) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "worker progress" in line]
    assert lines, "no progress line"
    if json_logs:
        entry = json.loads(lines[-1])
        assert entry["level"] == "info" and entry["events"] == 0 and "lag" in entry
    else:
        assert " INFO pipeline.worker: worker progress: 0 events (+0)" in lines[-1]
