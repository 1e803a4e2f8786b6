"""`vigil bench` end to end on the session's broker and Redis, at a tiny size.

The figures themselves are machine-dependent and never asserted; what is checked is that
every phase runs against the real stack and the report has every row it promises.
"""

from __future__ import annotations

import pytest

from pipeline.cli.main import main
from pipeline.local.stack import StackInfo


def test_bench_reports_every_measure(stack: StackInfo, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench", "--streams", "40", "--events", "2000", "--backends",
            "kafka-python,confluent", "--latency-seconds", "1", "--scale", "50",
            "--bootstrap-servers", stack.bootstrap_servers, "--redis-url", stack.redis_url,
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    for row in (
        "raw consume, events/s",
        "consume + decode, events/s",
        "consume + decode / raw consume",
        "worker end to end, events/s",
        "no changelog, events/s",
        "changelog cost",
        "worker / raw consume",
        "latency p99.9 at 90% load, ms",
        "Redis bytes per stream: state",
        "Redis bytes per stream: total",
        "scale curve (confluent)",
    ):
        assert row in out
    assert "nan" not in out.lower()


def test_bench_workers_curve(stack: StackInfo, capsys: pytest.CaptureFixture[str]) -> None:
    """Two worker processes in one group share a pre-loaded topic; every record counted."""
    code = main(
        [
            "bench", "--streams", "40", "--events", "3000", "--backends", "confluent",
            "--workers", "1,2", "--bootstrap-servers", stack.bootstrap_servers,
            "--redis-url", stack.redis_url,
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "many workers, one group" in out and "per-worker efficiency" in out
    rows = [line for line in out.splitlines() if line.strip().startswith("│")]
    shares = [row.split("│")[-2] for row in rows]
    assert [sum(int(x.replace(",", "")) for x in share.split("+")) for share in shares] == [
        3000,
        3000,
    ]


def test_bench_runs_on_redis_cluster(
    stack: StackInfo, redis_cluster: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "bench", "--streams", "40", "--events", "2000", "--backends", "confluent",
            "--latency-seconds", "1", "--bootstrap-servers", stack.bootstrap_servers,
            "--redis-url", redis_cluster,
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "worker end to end, events/s" in out and "nan" not in out.lower()
    assert "Redis bytes per stream: state" in out


def test_bench_bad_workers_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--workers", "two"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "two" in err
