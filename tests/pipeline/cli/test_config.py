"""`vigil config`: every effective setting, secrets masked, and where each came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli.config import MASK, effective_settings
from pipeline.cli.main import main
from pipeline.settings import Settings


def rows(capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[str, str]]:
    out = capsys.readouterr().out
    table = {}
    for line in out.splitlines():
        name, *middle, source = line.split()
        table[name] = (" ".join(middle), source)
    return table


def test_each_source_is_named_and_secrets_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "vigil.toml"
    config.write_text('[vigil]\nhidden_size = 32\ngroup_id = "from-file"\n'
                      'kafka_sasl_password = "hunter2"\n')  # fmt: skip
    monkeypatch.setenv("VIGIL_GROUP_ID", "from-env")
    monkeypatch.setenv("VIGIL_REDIS_URL", "redis://:s3cret@db:6379/0")
    monkeypatch.setenv("VIGIL_EVENT_FEATURES", "amount,fee")
    status = main(["config", "--config", str(config), "--bootstrap-servers", "k:9092"])
    table = rows(capsys)
    assert status == 0
    assert set(table) == set(Settings.model_fields)
    assert table["bootstrap_servers"] == ("k:9092", "flag")
    assert table["group_id"] == ("from-env", "env")  # the environment beats the file
    assert table["hidden_size"] == ("32", "file")
    assert table["event_features"] == ("amount,fee", "env")
    assert table["model_kind"] == ("gru", "default")
    assert table["redis_url"] == (MASK, "env")
    assert table["kafka_sasl_password"] == (MASK, "file")


def test_an_empty_address_shows_the_recorded_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.settings import stack_file

    stack_file().parent.mkdir(parents=True, exist_ok=True)
    stack_file().write_text('{"bootstrap_servers": "127.0.0.1:19092", '
                            '"redis_url": "redis://127.0.0.1:16379/0"}')  # fmt: skip
    table = {name: (value, source) for name, value, source in effective_settings(None, {})}
    assert table["bootstrap_servers"] == ("127.0.0.1:19092", "stack")
    assert table["redis_url"] == ("redis://127.0.0.1:16379/0", "stack")


def test_a_bad_setting_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIGIL_HIDDEN_SIZE", "huge")
    assert main(["config"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hidden_size" in err
