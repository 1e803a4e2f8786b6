"""`vigil demo` end to end: which stack it runs on, its NAB streams, where it leads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.local.demo_data import nab as nab_module
from pipeline.local.stack import stack_down, stack_status, stack_up

SMALL = ["--accounts", "30", "--pumps", "4", "--steps", "120", "--nab-rows", "300", "--exit"]


@pytest.fixture
def plain_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ../shared beside the repository and no VIGIL_NAB_DIR: the shipped sample only."""
    monkeypatch.delenv("VIGIL_NAB_DIR", raising=False)
    monkeypatch.setattr(nab_module, "shared_nab_dir", lambda: tmp_path / "no-shared")


@pytest.fixture
def cleanup() -> Iterator[None]:
    try:
        yield
    finally:
        stack_down()


def number(label: str, out: str) -> int:
    found = re.search(rf"{label}\D+([\d,]+)", out)
    assert found, label
    return int(found.group(1).replace(",", ""))


def test_demo_on_the_recorded_stack_twice_streams_nab_and_leads_on(
    plain_clone: None, cleanup: None, capsys: pytest.CaptureFixture[str]
) -> None:
    info = stack_up()
    outputs = []
    for _ in range(2):  # the second run gets its own topics and prefix: nothing refused
        assert main(["demo", *SMALL]) == 0
        outputs.append(capsys.readouterr().out)
    for out in outputs:
        assert "6 NAB series" in out and "recorded" in out
        assert info.bootstrap_servers in out
        assert number("events processed", out) == number("events processed", outputs[0])
        assert number("streams", out.split("summary")[1]) == 6 + 30 + 4
        assert re.search(r"dashboard\s+http://127\.0\.0\.1:\d+/", out)
        assert "next steps" in out and "3. open the dashboard" in out
        dead = out.split("dead letters")[-1].split("\n")[0]
        assert "out_of_order" not in dead and "duplicate_ts" not in dead
    status = stack_status()
    assert status is not None and status.is_running()  # the demo leaves it running


def test_demo_keep_starts_a_recorded_stack_and_leaves_it(
    plain_clone: None, cleanup: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack_status() is None
    assert main(["demo", *SMALL, "--keep"]) == 0
    out = capsys.readouterr().out
    status = stack_status()
    assert status is not None and status.is_running()
    assert status.bootstrap_servers in out and "kept running" in out
    assert "6 NAB series" in out


def test_a_missing_nab_dir_is_one_line_not_a_silent_drop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", *SMALL, "--nab-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no NAB data" in err and "--nab-dir" in err
