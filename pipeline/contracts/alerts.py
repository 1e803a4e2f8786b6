"""Alert records published to the alerts topic, and their deterministic ids.

An alert's id depends only on (stream, ts_ms). Since a stream never applies two events
with the same timestamp, the id names one event, and a worker that re-sends an alert
after a crash or rebalance sends the same id: downstream drops the copy.

Wire format: one compact UTF-8 JSON object with the keys ``id, stream, ts, ts_ms, score,
values, expected, top_feature, model_version, detector, meta, partition, offset, state,
action``, plus ``episode`` and ``reason`` (see `pipeline.contracts.episodes`) when known, and
``value`` (a plain number) when the stream's only feature is named ``"value"``. ``state``
is ``firing`` for the alerts that open or escalate an episode and ``resolved`` for the one
that ends it (whose id is `resolve_id`, one per episode). Alerts written before episodes
existed read back as firing ``open`` alerts without episode or reason. JSON has
no NaN: a non-finite number in ``values`` or ``expected`` (a diverged prediction) is
written as ``null`` and read back as NaN, so publishing never fails on it.
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from pipeline.contracts.episodes import (
    ACTIONS,
    STATES,
    AlertAction,
    AlertState,
    Episode,
    Reason,
    digest,
    resolve_id,
)
from pipeline.contracts.events import Event

_EPOCH = datetime(1970, 1, 1)
_ID_SCHEME = "vigil.alert.v1"


def alert_id(stream: str, ts_ms: int) -> str:
    """32 hex characters of sha256 over a canonical, unambiguous encoding of the event
    (`pipeline.contracts.episodes.digest`)."""
    return digest(_ID_SCHEME, stream, ts_ms)


def iso_utc(ts_ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with a fixed shape: 2026-11-21T10:00:00.000Z."""
    moment = _EPOCH + timedelta(milliseconds=ts_ms)
    return moment.isoformat(timespec="milliseconds") + "Z"


def _finite_or_none(numbers: dict[str, float]) -> dict[str, float | None]:
    return {name: x if math.isfinite(x) else None for name, x in numbers.items()}


@dataclass(slots=True)
class Alert:
    """One anomalous event: what was seen, what the model expected, and how sure it is."""

    id: str
    stream: str
    ts: str
    ts_ms: int
    score: float
    values: dict[str, float]
    expected: dict[str, float]
    top_feature: str
    model_version: str
    detector: str
    meta: dict[str, Any]
    partition: int
    offset: int
    state: AlertState = "firing"
    action: AlertAction = "open"
    episode: Episode | None = None
    reason: Reason | None = None

    def __post_init__(self) -> None:
        # Coerce numpy/torch scalars so that to_json never meets a type json cannot write.
        self.score = float(self.score)
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"alert score must be in [0, 1], got {self.score}")
        self.ts_ms = operator.index(self.ts_ms)
        self.values = {str(k): float(v) for k, v in self.values.items()}
        self.expected = {str(k): float(v) for k, v in self.expected.items()}
        if self.state not in STATES or self.action not in ACTIONS:
            raise ValueError(f"alert state/action must be one of {STATES}/{ACTIONS}")
        if (self.state == "resolved") != (self.action == "resolve"):
            raise ValueError("an alert is resolved exactly when its action is resolve")

    @classmethod
    def for_event(
        cls,
        event: Event,
        *,
        score: float,
        expected: dict[str, float],
        top_feature: str,
        model_version: str,
        detector: str,
        action: AlertAction = "open",
        episode: Episode | None = None,
        reason: Reason | None = None,
    ) -> Alert:
        """The alert for ``event``: id, timestamps, values, meta and source come from it
        (a resolve's id names its episode instead: any later event may carry it)."""
        resolved = action == "resolve"
        if resolved and episode is None:
            raise ValueError("a resolve alert needs its episode")
        return cls(
            id=resolve_id(event.stream, episode.start_ms)
            if resolved and episode is not None
            else alert_id(event.stream, event.ts_ms),
            stream=event.stream,
            ts=iso_utc(event.ts_ms),
            ts_ms=event.ts_ms,
            score=score,
            values=dict(zip(event.features, event.values, strict=True)),
            expected=expected,
            top_feature=top_feature,
            model_version=model_version,
            detector=detector,
            meta=event.meta,
            partition=event.partition,
            offset=event.offset,
            state="resolved" if resolved else "firing",
            action=action,
            episode=episode,
            reason=reason,
        )

    def to_json(self) -> bytes:
        body: dict[str, Any] = {
            "id": self.id,
            "stream": self.stream,
            "ts": self.ts,
            "ts_ms": self.ts_ms,
            "score": self.score,
        }
        if list(self.values) == ["value"]:
            value = self.values["value"]
            body["value"] = value if math.isfinite(value) else None
        body["values"] = _finite_or_none(self.values)
        body["expected"] = _finite_or_none(self.expected)
        body["top_feature"] = self.top_feature
        body["model_version"] = self.model_version
        body["detector"] = self.detector
        body["meta"] = self.meta
        body["partition"] = self.partition
        body["offset"] = self.offset
        body["state"] = self.state
        body["action"] = self.action
        if self.episode is not None:
            body["episode"] = self.episode.to_body()
        if self.reason is not None:
            body["reason"] = self.reason.to_body()
        try:  # orjson: several times faster than json, and alerts are built per round
            return orjson.dumps(body)
        except TypeError:  # an integer beyond 64 bits in meta: the json module writes any
            return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("ascii")

    @classmethod
    def from_json(cls, data: bytes | str) -> Alert:
        """Read an alert back; raises ValueError with a one-line reason if it is not one."""
        try:
            body = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"alert is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ValueError("alert is not a JSON object")
        try:
            return cls._from_body(body)
        except OverflowError:
            raise ValueError("alert has a number too large for a float") from None
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"alert episode or reason is malformed: {exc!r:.60}") from None

    @classmethod
    def _from_body(cls, body: dict[str, Any]) -> Alert:
        return cls(
            id=_get(body, "id", str),
            stream=_get(body, "stream", str),
            ts=_get(body, "ts", str),
            ts_ms=_get(body, "ts_ms", int),
            score=_get(body, "score", float),
            values=_numbers(body, "values"),
            expected=_numbers(body, "expected"),
            top_feature=_get(body, "top_feature", str),
            model_version=_get(body, "model_version", str),
            detector=_get(body, "detector", str),
            meta=_get(body, "meta", dict),
            partition=_get(body, "partition", int),
            offset=_get(body, "offset", int),
            state=body.get("state", "firing"),
            action=body.get("action", "open"),
            episode=Episode.from_body(_get(body, "episode", dict)) if "episode" in body else None,
            reason=Reason.from_body(_get(body, "reason", dict)) if "reason" in body else None,
        )


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _get(body: dict[str, Any], name: str, kind: type) -> Any:
    if name not in body:
        raise ValueError(f"alert has no {name!r}")
    value = body[name]
    ok = _is_number(value) if kind is float else isinstance(value, kind)
    if kind is int and isinstance(value, bool):
        ok = False
    if not ok:
        raise ValueError(f"alert field {name!r} must be {kind.__name__}, got {value!r:.40}")
    return value


def _numbers(body: dict[str, Any], name: str) -> dict[str, float]:
    numbers = _get(body, name, dict)
    for key, x in numbers.items():
        if x is not None and not _is_number(x):
            raise ValueError(f"alert field {name}.{key} must be a number or null")
    return {key: math.nan if x is None else float(x) for key, x in numbers.items()}
