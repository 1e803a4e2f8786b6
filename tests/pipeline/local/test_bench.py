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
        "worker / raw consume",
        "latency p99.9 at 90% load, ms",
        "Redis bytes per stream: state",
        "Redis bytes per stream: total",
        "scale curve (confluent)",
    ):
        assert row in out
    assert "nan" not in out.lower()
