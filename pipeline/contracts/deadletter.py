"""Rejected records: the reason codes, the rejection, and the headers it travels with.

A record the worker cannot apply goes to the dead-letter topic byte for byte as it came
(key and value), so nothing is lost and it can be replayed once fixed; the reason code,
a one-line detail for people, and where it came from travel in headers. The decoder
decides the content reasons; the worker decides the last three against the stream's
saved state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# --- reason codes: decided by the decoder ---------------------------------------------
OVERSIZED = "oversized"
EMPTY = "empty"
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
NON_FINITE = "non_finite"
ABSURD_MAGNITUDE = "absurd_magnitude"
BAD_TIMESTAMP = "bad_timestamp"
BAD_STREAM_ID = "bad_stream_id"
KEY_MISMATCH = "key_mismatch"
TOO_MANY_FEATURES = "too_many_features"
BAD_META = "bad_meta"
# --- reason codes: decided by the worker against the stream's saved state --------------
OUT_OF_ORDER = "out_of_order"
DUPLICATE_TS = "duplicate_ts"
FEATURE_MISMATCH = "feature_mismatch"
FUTURE_TIMESTAMP = "future_timestamp"

REASONS: tuple[str, ...] = (
    OVERSIZED,
    EMPTY,
    MALFORMED_JSON,
    NOT_AN_OBJECT,
    MISSING_FIELD,
    WRONG_TYPE,
    NON_FINITE,
    ABSURD_MAGNITUDE,
    BAD_TIMESTAMP,
    BAD_STREAM_ID,
    KEY_MISMATCH,
    TOO_MANY_FEATURES,
    BAD_META,
    OUT_OF_ORDER,
    DUPLICATE_TS,
    FEATURE_MISMATCH,
    FUTURE_TIMESTAMP,
)


class ConsumerRecordLike(Protocol):
    """The fields of kafka-python's ConsumerRecord that decoding reads."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(slots=True)
class Rejected:
    """A record that goes to the dead-letter topic as it came, with why."""

    reason: str
    detail: str
    raw_key: bytes | None
    raw_value: bytes | None
    topic: str
    partition: int
    offset: int


def reject(record: ConsumerRecordLike, reason: str, detail: str) -> Rejected:
    """A rejection for ``record``: the decoder's, and the worker's state-based ones."""
    return Rejected(
        reason=reason,
        detail=detail,
        raw_key=record.key,
        raw_value=record.value,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )


def deadletter_headers(rejected: Rejected) -> list[tuple[str, bytes]]:
    """Headers for the dead-letter copy, whose key and value are the original bytes."""
    return [
        ("vigil.reason", rejected.reason.encode("utf-8")),
        ("vigil.detail", rejected.detail.encode("utf-8", "backslashreplace")),
        ("vigil.source.topic", rejected.topic.encode("utf-8", "backslashreplace")),
        ("vigil.source.partition", str(rejected.partition).encode("ascii")),
        ("vigil.source.offset", str(rejected.offset).encode("ascii")),
    ]
