"""Which events of a round may be applied to their streams, and why the others may not.

A pure function of the streams' states and the round's columns, so the rule that keeps
"nothing applied twice" (replays at or below the stored offset are skipped) and the
stream-order rules (no event from the past, no second event at the same instant, no event
from too far in the future, one feature set per stream) read in one place.
"""

from __future__ import annotations

import numpy as np

from pipeline.contracts.deadletter import (
    DUPLICATE_TS,
    FEATURE_MISMATCH,
    FUTURE_TIMESTAMP,
    OUT_OF_ORDER,
)


def judge_round(
    st: np.ndarray,
    part: np.ndarray,
    offs: np.ndarray,
    ts: np.ndarray,
    ftag: np.ndarray,
    horizon_ms: int,
    max_future_s: float,
) -> tuple[np.ndarray, list[tuple[np.ndarray, str, str]]]:
    """-> (replay mask, [(refused mask, dead-letter reason, detail)]) for one round.

    `st` holds each event's stream state, the other arrays the events' partition, offset,
    timestamp and feature tag; `horizon_ms` is the latest timestamp the worker accepts.
    """
    started = st["count"] > 0
    replay = (st["partition"] == part) & (offs <= st["offset"])
    future = ~replay & (ts > horizon_ms)
    judged = started & ~replay & ~future  # checked against the stream's last event
    older = judged & (ts < st["last_ts"])
    same_ts = judged & (ts == st["last_ts"])
    mismatch = judged & ~older & ~same_ts & (st["feature_tag"] != ftag)
    return replay, [
        (future, FUTURE_TIMESTAMP, f"ts is over {max_future_s:g} s ahead of the worker's clock"),
        (older, OUT_OF_ORDER, "ts is older than the stream's last applied event"),
        (same_ts, DUPLICATE_TS, "ts equals the stream's last applied event"),
        (mismatch, FEATURE_MISMATCH, "feature names differ from the stream's first event"),
    ]
