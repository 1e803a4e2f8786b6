"""What an alert says about its episode and why it fired: parts of the alert contract.

An *episode* is one incident of one stream, from the alert that opens it to the event
that resolves it (`detectors.policy`). Every alert of an episode carries the same
episode id, a hash of (stream, start), so a consumer groups alerts without state and a
person can acknowledge or label the incident once. The last alert of an episode has
state ``resolved``.

The *reason* says which evidence fired (the detector's sources, named ``kind`` or
``kind@scale``: ``error``, ``level@1h``), how strong each was, and per feature its value,
the expected value, the band the detector considered usual, and its share of the
deviation; ``text`` is one sentence for a person, built here so that the dashboard, the
webhook and Alertmanager all say the same thing.
"""

from __future__ import annotations

import hashlib
import math
import operator
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as quote
from typing import Any, Literal

_EPISODE_SCHEME = "vigil.episode.v1"
_RESOLVE_SCHEME = "vigil.resolve.v1"

AlertState = Literal["firing", "resolved"]
AlertAction = Literal["open", "escalate", "resolve"]
STATES: tuple[AlertState, ...] = ("firing", "resolved")
ACTIONS: tuple[AlertAction, ...] = ("open", "escalate", "resolve")

SOURCE_WORDS = {
    "error": "a run of larger one-step errors than usual",
    "surprise": "a one-step error rare for this stream's own model errors",
    "level": "a sustained deviation from its usual level at this time of day",
    "range": "a value beyond anything it has shown",
}


def digest(scheme: str, stream: str, ts_ms: int) -> str:
    """32 hex characters of sha256 over the compact JSON of ``[scheme, stream, ts_ms]``.

    JSON with ASCII escapes keeps ("a1", 23) and ("a", 123) apart and accepts any string.
    The text is put together from the json module's own string escaper rather than by
    `json.dumps` (the same bytes; several alerts per round each need one or two ids).
    """
    number = operator.index(ts_ms)
    canonical = f"[{quote(scheme)},{quote(stream)},{number}]"
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]


def episode_id(stream: str, start_ms: int) -> str:
    """32 hex characters naming the episode of `stream` that opened at `start_ms`."""
    return digest(_EPISODE_SCHEME, stream, start_ms)


def resolve_id(stream: str, start_ms: int) -> str:
    """The alert id of an episode's resolve: one per episode, whatever event carried it."""
    return digest(_RESOLVE_SCHEME, stream, start_ms)


@dataclass(slots=True)
class Episode:
    """The incident an alert belongs to, as of that alert."""

    id: str
    start_ms: int
    peak: float  # the largest score of the episode so far
    duration_s: float  # from the opening alert to this alert (resolved: to the last loud event)

    def to_body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "start_ms": self.start_ms,
            "peak": self.peak,
            "duration_s": self.duration_s,
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Episode:
        return cls(
            id=str(body["id"]),
            start_ms=int(body["start_ms"]),
            peak=float(body["peak"]),
            duration_s=float(body["duration_s"]),
        )


@dataclass(slots=True)
class FeatureReason:
    name: str
    value: float
    expected: float
    lower: float
    upper: float
    share: float  # this feature's part of the event's deviation, in [0, 1]

    def to_body(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "name": self.name,
            "value": num(self.value),
            "expected": num(self.expected),
            "lower": num(self.lower),
            "upper": num(self.upper),
            "share": num(self.share),
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> FeatureReason:
        def num(key: str) -> float:
            x = body.get(key)
            return math.nan if x is None else float(x)

        return cls(
            name=str(body["name"]),
            value=num("value"),
            expected=num("expected"),
            lower=num("lower"),
            upper=num("upper"),
            share=num("share"),
        )


@dataclass(slots=True)
class Reason:
    fired: str  # the strongest evidence source
    evidence: dict[str, float]  # every source's score, on the alert score's scale
    features: list[FeatureReason]  # largest share first
    text: str = ""

    def to_body(self) -> dict[str, Any]:
        return {
            "fired": self.fired,
            "evidence": self.evidence,
            "features": [f.to_body() for f in self.features],
            "text": self.text,
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Reason:
        return cls(
            fired=str(body["fired"]),
            evidence={str(k): float(v) for k, v in dict(body["evidence"]).items()},
            features=[FeatureReason.from_body(f) for f in body["features"]],
            text=str(body.get("text", "")),
        )


def describe_source(source: str) -> str:
    """``level@1h`` -> "a sustained deviation ... (over 1h)"; unknown kinds by name."""
    kind, _, scale = source.partition("@")
    words = SOURCE_WORDS.get(kind, f"{kind} evidence")
    return f"{words} (over {scale})" if scale else words


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "?"
    if 1e4 <= abs(x) < 1e15:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def _duration(seconds: float) -> str:
    minutes = seconds / 60.0
    if minutes < 1:
        return f"{seconds:.0f} s"
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def sentence(state: AlertState, reason: Reason, episode: Episode | None, ts_ms: int = 0) -> str:
    """One readable sentence, e.g. "p99_ms is 430, 3.6x expected 120 (usual 95 to 150): a
    sustained deviation from its usual level at this time of day; ongoing for 40 min".

    A resolve says how long the stream was anomalous and how long it has been quiet: an
    episode also resolves when the detector has adapted to a lasting change."""
    if state == "resolved":
        if episode is None:
            return "resolved"
        quiet = max(ts_ms - episode.start_ms, 0) / 1000.0 - episode.duration_s
        return (
            f"resolved: no anomalous score for {_duration(quiet)}; anomalous for "
            f"{_duration(episode.duration_s)} (peak score {episode.peak:.2f})"
        )
    parts = []
    for f in reason.features[:2]:
        ratio = ""
        if math.isfinite(f.expected) and abs(f.expected) > 1e-9 and math.isfinite(f.value):
            r = f.value / f.expected
            ratio = f"{r:.1f}x " if r > 0 and (r >= 1.5 or r <= 1 / 1.5) else ""
        band = f"usual {_fmt(f.lower)} to {_fmt(f.upper)}"
        parts.append(f"{f.name} is {_fmt(f.value)}, {ratio}expected {_fmt(f.expected)} ({band})")
    text = "; ".join(parts) + ": " + describe_source(reason.fired)
    if episode is not None and episode.duration_s > 0:
        text += f"; ongoing for {_duration(episode.duration_s)}"
    return text
