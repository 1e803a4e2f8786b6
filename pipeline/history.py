"""What the API shows, kept in Redis by the worker in the same round trip as the states.

Per batch, alongside the fenced state writes (one Lua call, see `state_store`):

- `{prefix}:h:{<stream>}`  list, newest last, of JSON entries
  `{"ts": ms, "v": {feature: value}, "e": {feature: expected}, "s": score, "a": alert}`;
  one list element per saved batch holds that batch's entries of the stream separated by
  newlines (read with `split_entries`), at most `history_length` elements — appended only
  when the stream's state write was accepted (no doubles on replay);
- `{prefix}:scores`        sorted set: stream id -> its latest score (most anomalous first);
- `{prefix}:alerts`        Redis stream of alert JSON (field `alert`), capped near
  `ALERTS_KEPT` entries, which the API pages and follows live.

Keys of one stream share its hash tag, like its state key, so a Redis Cluster keeps them
on one slot.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

from pipeline.state_store import ALERTS_KEPT, alerts_key, history_key, scores_key

__all__ = [
    "ALERTS_KEPT",
    "HistoryEntry",
    "alerts_key",
    "entry_json",
    "history_key",
    "scores_key",
    "split_entries",
]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    ts_ms: int
    values: dict[str, float]
    expected: dict[str, float]
    score: float
    alert: bool

    def to_json(self) -> bytes:
        body = {"ts": self.ts_ms, "v": self.values, "e": self.expected, "s": self.score,
                "a": self.alert}  # fmt: skip
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> HistoryEntry:
        body: dict[str, Any] = json.loads(raw)
        return cls(
            ts_ms=int(body["ts"]),
            values={k: float("nan") if v is None else float(v) for k, v in body["v"].items()},
            expected={k: float("nan") if v is None else float(v) for k, v in body["e"].items()},
            score=float(body["s"]),
            alert=bool(body["a"]),
        )


def split_entries(elements: list[bytes]) -> list[HistoryEntry]:
    """List elements as stored (oldest first) -> entries, oldest first."""
    return [HistoryEntry.from_json(line) for el in elements for line in el.split(b"\n") if line]


def _num(x: float) -> str:
    return f"{x:.6g}" if math.isfinite(x) else "null"


@functools.lru_cache(maxsize=4096)
def _quoted(features: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(json.dumps(f) + ":" for f in features)


def entry_json(
    ts_ms: int, features: tuple[str, ...], values: list[float], expected: list[float],
    score: float, alert: bool,
) -> bytes:  # fmt: skip
    """The hot-path encoder: one compact JSON per applied event, rounded to 6 significant
    digits so a history entry stays small."""
    names = _quoted(features)
    v = ",".join([q + _num(x) for q, x in zip(names, values, strict=True)])
    e = ",".join([q + _num(x) for q, x in zip(names, expected, strict=True)])
    flag = "true" if alert else "false"
    return f'{{"ts":{ts_ms},"v":{{{v}}},"e":{{{e}}},"s":{score:.4f},"a":{flag}}}'.encode()
