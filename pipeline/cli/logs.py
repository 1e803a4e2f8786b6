"""Logging for the `vigil` commands: plain lines for people, or one JSON object per line
for log collectors (`log_format = "json"`, `VIGIL_LOG_FORMAT=json`, `--log-json`)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else was passed with `extra=` and is a field.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", ...extra fields, "error"}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(verbose: bool, json_lines: bool = False, info_for: str | None = None) -> None:
    """Configure the root logger once per command. `info_for` names a logger that logs at
    info level even without -v (the worker's progress lines)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    if info_for:
        logging.getLogger(info_for).setLevel(logging.INFO)
    if not verbose:
        # kafka-python logs its internal event-loop timings as warnings; not user news.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
        logging.getLogger("confluent_kafka").setLevel(logging.CRITICAL)
