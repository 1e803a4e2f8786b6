"""What the API shows, kept in Redis by the worker in the same round trip as the states.

Per batch, alongside the fenced state writes (one Lua call, see `state_store`):

- `{prefix}:h:{<stream>}`  string: the stream's last `history_length` points (value,
  prediction, score, alert), binary, oldest first; appended only when the stream's state
  write was accepted (no doubles on replay);
- `{prefix}:scores`        sorted set: stream id -> its latest score (most anomalous first);
- `{prefix}:alerts`        Redis stream of alert JSON (field `alert`), capped near
  `ALERTS_KEPT` entries, which the API pages and follows live.

Why binary and why one string: a point of a one-feature stream takes 21 bytes (JSON took
about 90), a whole batch's points are encoded with a few numpy calls instead of one
`json.dumps` per event, and a string is trimmed to a number of *points* with one
`string.sub` in Lua. Layout of the string:

    b"VH", header size u16, point size u16, feature names (UTF-8, joined by 0x1f),
    then points: ts_ms i64, score f32, alert u8, values f32[n], expected f32[n]

The keys are named in `pipeline.state.redis`; those of one stream share its hash tag,
like its state key, so a Redis Cluster keeps them on one slot.

`history_length` (points) 0 keeps no history at all: at hidden size 64 a stream's state
is about 0.85 KiB of Redis, and each point of history adds 13 + 8 x features bytes.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["HistoryEntry", "append_points", "encode_points", "parse_history"]

MAGIC = b"VH"
_HEAD = struct.Struct("<2sHH")
_SEP = "\x1f"


@functools.lru_cache(maxsize=16)
def point_dtype(n_features: int) -> np.dtype:
    return np.dtype(
        [
            ("ts", "<i8"),
            ("score", "<f4"),
            ("alert", "u1"),
            ("values", "<f4", (n_features,)),
            ("expected", "<f4", (n_features,)),
        ]
    )


@functools.lru_cache(maxsize=4096)
def header(features: tuple[str, ...]) -> bytes:
    """The prefix of a stream's history string; it says how to read the points."""
    names = _SEP.join(features).encode("utf-8", "surrogatepass")
    return _HEAD.pack(MAGIC, _HEAD.size + len(names), point_dtype(len(features)).itemsize) + names


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    ts_ms: int
    values: dict[str, float]
    expected: dict[str, float]
    score: float
    alert: bool


def parse_history(blob: bytes | None) -> list[HistoryEntry]:
    """A stored history string -> its points, oldest first ([] for none or unreadable)."""
    if not blob or len(blob) < _HEAD.size:
        return []
    magic, head_size, point_size = _HEAD.unpack_from(blob)
    names = blob[_HEAD.size : head_size].decode("utf-8", "surrogatepass")
    features = names.split(_SEP) if names else []
    dtype = point_dtype(len(features))
    body = blob[head_size:]
    if magic != MAGIC or point_size != dtype.itemsize or len(body) % point_size:
        return []
    points = np.frombuffer(body, dtype=dtype)
    return [
        HistoryEntry(
            ts_ms=int(p["ts"]),
            values=dict(zip(features, p["values"].tolist(), strict=True)),
            expected=dict(zip(features, p["expected"].tolist(), strict=True)),
            score=float(p["score"]),
            alert=bool(p["alert"]),
        )
        for p in points
    ]


def append_points(stored: bytes | None, new: bytes, keep: int) -> bytes:
    """The history string after appending `new` (a header and points) to `stored`, cut to
    the last `keep` points. The Lua save does the same; this is its reference.

    A stored string with another header (the stream's features changed after a state
    reset) is replaced rather than mixed with points of another shape.
    """
    _, head_size, point_size = _HEAD.unpack_from(new)
    head = new[:head_size]
    body = new[head_size:]
    if stored is not None and stored[:head_size] == head:
        body = stored[head_size:] + body
    cut = keep * point_size
    if len(body) > cut:
        body = body[len(body) - cut :]
    return head + body


def encode_points(
    stream_index: np.ndarray,
    features: Sequence[tuple[str, ...]],
    ts_ms: np.ndarray,
    scores: np.ndarray,
    alerts: np.ndarray,
    values: np.ndarray,
    expected: np.ndarray,
) -> dict[int, bytes]:
    """A batch's applied events -> per stream index, its header and new points.

    Events are given in application order; `features[i]` are stream i's feature names
    (fixed per stream: the worker rejects events whose features differ). Streams are
    grouped by feature count so each group is one structured array and one `tobytes`.
    """
    if len(stream_index) == 0:
        return {}
    order = np.argsort(stream_index, kind="stable")  # keeps each stream's events in order
    sidx = stream_index[order]
    widths = np.fromiter((len(features[i]) for i in sidx.tolist()), np.int64, len(sidx))
    out: dict[int, bytes] = {}
    for n in np.unique(widths).tolist():
        rows = order[widths == n]
        points = np.empty(len(rows), dtype=point_dtype(n))
        points["ts"] = ts_ms[rows]
        points["score"] = scores[rows]
        points["alert"] = alerts[rows]
        points["values"] = values[rows, :n]
        points["expected"] = expected[rows, :n]
        raw = points.tobytes()
        size = points.dtype.itemsize
        streams, starts, counts = np.unique(
            stream_index[rows], return_index=True, return_counts=True
        )
        for i, a, c in zip(streams.tolist(), starts.tolist(), counts.tolist(), strict=True):
            out[i] = header(features[i]) + raw[a * size : (a + c) * size]
    return out
