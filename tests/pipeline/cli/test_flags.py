"""Settings flags declared once, and the local stack's addresses filled in by the CLI only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pipeline.cli.flags import settings_from_args, with_recorded_stack
from pipeline.cli.main import build_parser
from pipeline.settings import Settings, SettingsError, stack_file

ROOT = Path(__file__).resolve().parents[3]
SETTINGS_FLAGS = {"--config", "--bootstrap-servers", "--redis-url"}


def _record(
    bootstrap: str = "127.0.0.1:19092", redis_url: str = "redis://127.0.0.1:16379/0"
) -> None:
    stack_file().parent.mkdir(parents=True, exist_ok=True)
    stack_file().write_text(json.dumps({"bootstrap_servers": bootstrap, "redis_url": redis_url}))


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_that_reads_settings_takes_the_same_flags() -> None:
    commands = _subcommands()
    with_settings = {
        name
        for name, p in commands.items()
        if SETTINGS_FLAGS & {s for a in p._actions for s in a.option_strings}
    }
    assert {"worker", "api", "train", "trainer", "models", "backtest"} <= with_settings
    for name in with_settings:
        flags = {s for a in commands[name]._actions for s in a.option_strings}
        assert flags >= SETTINGS_FLAGS, name


def test_the_flags_are_declared_in_one_place() -> None:
    declaring = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "pipeline").rglob("*.py"))
        if '"--redis-url"' in path.read_text()
    ]
    assert declaring == ["pipeline/cli/flags.py"]


def test_settings_do_no_file_io(vigil_home: Path) -> None:
    _record()
    settings = Settings()
    with pytest.raises(SettingsError, match="no Kafka broker configured"):
        settings.kafka_bootstrap()
    with pytest.raises(SettingsError, match="no Redis configured"):
        settings.redis_address()


def test_the_cli_fills_empty_addresses_from_the_stack_record(vigil_home: Path) -> None:
    _record()
    filled = with_recorded_stack(Settings())
    assert filled.kafka_bootstrap() == "127.0.0.1:19092"
    assert filled.redis_address() == "redis://127.0.0.1:16379/0"
    explicit = with_recorded_stack(Settings(bootstrap_servers="kafka:9092"))
    assert explicit.kafka_bootstrap() == "kafka:9092"
    assert explicit.redis_address() == "redis://127.0.0.1:16379/0"
    args = build_parser().parse_args(["demo"])
    assert settings_from_args(args, recorded_stack=False).bootstrap_servers == ""
    assert settings_from_args(args).bootstrap_servers == "127.0.0.1:19092"


def test_a_broken_stack_record_is_no_address(vigil_home: Path) -> None:
    stack_file().parent.mkdir(parents=True, exist_ok=True)
    for text in ("{not json", "[1, 2]", json.dumps({"bootstrap_servers": 42})):
        stack_file().write_text(text)
        assert with_recorded_stack(Settings()).bootstrap_servers == ""
