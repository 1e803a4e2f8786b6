"""The one timestamp rule: forms, the seconds/milliseconds cut-off, the accepted range."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.contracts.timestamps import (
    EPOCH_MS_FROM,
    TS_END_MS,
    BadTimestamp,
    epoch_ms,
    epoch_ms_text,
)

TS = 1763719200000  # 2025-11-21T10:00:00Z


@pytest.mark.parametrize(
    ("ts", "ms"),
    [
        (TS, TS),
        (TS // 1000, TS),
        (TS / 1000 + 0.25, TS + 250),
        ("2025-11-21T10:00:00Z", TS),
        ("2025-11-21T11:00:00+01:00", TS),
        ("2025-11-21T10:00:00", TS),  # no offset: UTC
        ("2025-11-21 10:00:00.0009", TS),  # sub-millisecond digits dropped
        (TS_END_MS // 1000 - 1, TS_END_MS - 1000),  # the last second accepted as seconds
        (int(EPOCH_MS_FROM), int(EPOCH_MS_FROM)),  # milliseconds from here
        (0, 0),
        (TS_END_MS - 1, TS_END_MS - 1),
    ],
)
def test_forms_name_one_instant(ts: object, ms: int) -> None:
    assert epoch_ms(ts) == ms
    assert type(epoch_ms(ts)) is int


@pytest.mark.parametrize(
    ("ts", "why"),
    [
        (-1, "before 1970"),
        (TS_END_MS, "after the year 2200"),
        (int(EPOCH_MS_FROM) - 1, "after the year 2200"),  # still seconds: year 5138
        ("1969-12-31T23:59:59Z", "before 1970"),
        (1e300, "before 1970 or after"),
        (float("nan"), "before 1970 or after"),
        ("soon", "not ISO 8601"),
        ("1763719200", "not ISO 8601"),  # a JSON string is never an epoch number
        (True, "must be an ISO 8601 string or a number"),
        (None, "must be an ISO 8601 string or a number"),
    ],
)
def test_refused(ts: object, why: str) -> None:
    with pytest.raises(BadTimestamp, match=why):
        epoch_ms(ts)


def test_text_cells_read_numbers_as_epoch_numbers() -> None:
    assert epoch_ms_text(" 1763719200 ") == TS
    assert epoch_ms_text("1763719200000") == TS
    assert epoch_ms_text("1763719200.25") == TS + 250
    assert epoch_ms_text("2025-11-21 10:00:00") == TS
    for bad in ("", "nan", "inf", "yesterday", "-5"):
        with pytest.raises(BadTimestamp):
            epoch_ms_text(bad)


@given(st.one_of(st.integers(-(10**16), 10**16), st.floats(allow_nan=False)))
def test_a_number_written_as_text_is_the_same_instant(number: float) -> None:
    """Valid or not: a CSV cell holding a number is read as the JSON number would be."""
    as_json: int | str
    as_text: int | str
    try:
        as_json = epoch_ms(number)
    except BadTimestamp as exc:
        as_json = str(exc)
    try:
        as_text = epoch_ms_text(repr(number))
    except BadTimestamp as exc:
        as_text = str(exc)
    assert as_text == as_json
