"""The one rule for event times: which forms a timestamp may take and which instant each names.

The worker's decoder (JSON values, and a mapped topic's named epoch unit), backtest, the
evaluation and training readers and the demo (CSV cells) all call this module, so a file
replayed offline is read at the same instants the worker would read it live. A timestamp
is an ISO 8601 string (``Z`` or an offset; no offset means UTC) or a number of epoch
seconds or milliseconds: numbers at or above `EPOCH_MS_FROM` are milliseconds, smaller
ones seconds (1e11 seconds is the year 5138 and 1e11 milliseconds is March 1973, so any
realistic time is read right). The result is integer epoch milliseconds (a number
rounded to the millisecond, an ISO string's sub-millisecond digits dropped); times
before 1970 or from the year 2201 on are refused: a state's timestamps are kept as int64
milliseconds and compared in order, and such values are always a producer's mistake.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Literal

EPOCH_MS_FROM = 1e11
"""Epoch numbers at or above this are milliseconds, below it seconds."""
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)
TS_MIN_MS = 0
TS_END_MS = (datetime(2201, 1, 1, tzinfo=timezone.utc) - _EPOCH) // _ONE_MS
"""The first millisecond refused (exclusive end of the accepted range)."""

OUT_OF_RANGE = "is before 1970 or after the year 2200"
NOT_A_TIME = "is not ISO 8601 or epoch seconds/ms"
WRONG_TYPE = "must be an ISO 8601 string or a number"


class BadTimestamp(ValueError):
    """A timestamp outside the rule; the message says why, to follow the value itself."""


def epoch_ms(ts: object) -> int:
    """A JSON timestamp (ISO 8601 string, or epoch seconds/ms as a number) -> epoch ms.

    Booleans are not numbers. Raises `BadTimestamp`.
    """
    kind = type(ts)
    if kind is int or kind is float:
        number: float = ts  # type: ignore[assignment]
        return epoch_ms_in(number, "ms" if number >= EPOCH_MS_FROM else "s")
    if kind is str:
        try:
            moment = datetime.fromisoformat(ts)  # type: ignore[arg-type]
        except ValueError:
            raise BadTimestamp(NOT_A_TIME) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        ms = (moment - _EPOCH) // _ONE_MS
        if not TS_MIN_MS <= ms < TS_END_MS:
            raise BadTimestamp(OUT_OF_RANGE)
        return ms
    raise BadTimestamp(WRONG_TYPE)


def epoch_ms_in(number: float, unit: Literal["s", "ms"]) -> int:
    """An epoch number whose unit is known -> epoch ms (sub-millisecond digits rounded).

    `epoch_ms` picks the unit by the cut-off; a mapped topic can name it (`epoch_s`,
    `epoch_ms`). Raises `BadTimestamp` outside the range, NaN and infinities included
    (checked before rounding, which they could not survive).
    """
    ms = number * 1000 if unit == "s" else number
    if not TS_MIN_MS <= ms < TS_END_MS:
        raise BadTimestamp(OUT_OF_RANGE)
    return round(ms)


def epoch_ms_text(text: str) -> int:
    """A CSV cell -> epoch ms: text that reads as a number is epoch seconds/ms, else ISO 8601.

    CSV cells carry no type, so ``1404172800`` there is the number a JSON producer would
    send; surrounding spaces are ignored. Raises `BadTimestamp`.
    """
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        return epoch_ms(text)
    return epoch_ms(int(number) if number.is_integer() else number)
