from __future__ import annotations

from typing import Any

import pytest

from pipeline.contracts.alerts import Alert, alert_id, iso_utc


@pytest.fixture
def make_alert() -> Any:
    def make(i: int, stream: str = "s-1") -> Alert:
        ts = 1_763_700_000_000 + i
        return Alert(id=alert_id(stream, ts), stream=stream, ts=iso_utc(ts), ts_ms=ts, score=0.9,
                     values={"value": 1.0}, expected={"value": 0.0}, top_feature="value",
                     model_version="m", detector="d", meta={}, partition=0, offset=i)  # fmt: skip

    return make
