"""Log lines as JSON objects for log collectors."""

from __future__ import annotations

import json
import logging

from pipeline.cli.logs import JsonFormatter


def test_a_json_line_has_the_message_and_the_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "pipeline.worker", "levelname": "INFO", "msg": "%s events", "args": (5,),
         "events": 5, "lag": None}
    )  # fmt: skip
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "5 events" and entry["level"] == "info"
    assert entry["logger"] == "pipeline.worker"
    assert entry["events"] == 5 and entry["lag"] is None
    assert entry["time"].endswith("+00:00")


def test_an_exception_stays_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})
    line = JsonFormatter().format(record)
    assert "\n" not in line and "boom" in json.loads(line)["error"]
