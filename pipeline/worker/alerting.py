"""The alerts of one detector round: which events alert, with their episode and reason.

The episode policy (`detectors.policy`) decides per event: open, escalate, resolve or
nothing. Open and escalate become firing alerts; resolve becomes the episode's resolved
alert. One case needs the state from before the event: an episode that ends and a new
one that opens on the same event (the first strong score after the quiet time) is one
OPEN action, so the old episode's resolve is sent first, from the old episode fields.

The reason's band for a feature is the detector's expectation plus or minus `BAND_K`
times the stream's running spread (its normalisation statistics, in its own units), and
a feature's share is its deviation in those spreads over the sum of all features'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from detectors.base import StepOutput
from detectors.policy import ESCALATE, FLAG_IN_EPISODE, OPEN, RESOLVE
from pipeline.contracts.alerts import Alert
from pipeline.contracts.episodes import (
    AlertAction,
    AlertState,
    Episode,
    FeatureReason,
    Reason,
    episode_id,
    sentence,
)
from pipeline.contracts.events import Event

BAND_K = 3.0


def feature_reasons(
    event: Event, expected: np.ndarray, norm_mean: np.ndarray, norm_var: np.ndarray
) -> list[FeatureReason]:
    """Per feature: value, expected, band and share of the deviation, largest share first."""
    return reasons_of_events([event], expected[None], norm_mean[None], norm_var[None])[0]


def reasons_of_events(
    events: Sequence[Event], expected: np.ndarray, norm_mean: np.ndarray, norm_var: np.ndarray
) -> list[list[FeatureReason]]:
    """`feature_reasons` of several events at once ([A, F] arrays, row k for events[k]):
    a round's alerting events share the numpy calls, a dozen of which cost more per
    alert than the arithmetic when made one event at a time."""
    width = expected.shape[1]
    n = np.array([len(e.features) for e in events], dtype=np.int64)
    x = np.zeros((len(events), width), dtype=np.float64)
    for k, event in enumerate(events):
        x[k, : n[k]] = event.values
    exp = expected.astype(np.float64)
    mean = norm_mean.astype(np.float64)
    spread = np.sqrt(np.maximum(norm_var.astype(np.float64), 0.0)) + 1e-6 + 1e-4 * np.abs(mean)
    with np.errstate(invalid="ignore", over="ignore"):
        dev = np.abs(x - exp) / spread
    dev = np.where(np.isfinite(dev) & (np.arange(width) < n[:, None]), dev, 0.0)
    total = dev.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(total > 0, dev / total, 1.0 / np.maximum(n, 1)[:, None])
    columns = (x, exp, exp - BAND_K * spread, exp + BAND_K * spread, shares)
    out = []
    rows = zip(events, *(c.tolist() for c in columns), strict=True)
    for event, value, mid, low, high, share in rows:
        reasons = [
            FeatureReason(name, value[i], mid[i], low[i], high[i], share[i])
            for i, name in enumerate(event.features)
        ]
        reasons.sort(key=lambda f: -f.share if math.isfinite(f.share) else 0.0)
        out.append(reasons)
    return out


def _reason(out: StepOutput, row: int, features: list[FeatureReason]) -> Reason:
    scores = out.by_source[row].tolist() if out.by_source.shape[1] else []
    evidence = {name: float(s) for name, s in zip(out.sources, scores, strict=True)}
    fired = max(evidence, key=lambda k: evidence[k]) if evidence else "score"
    return Reason(fired=fired, evidence=evidence, features=features)


def _alert(
    event: Event,
    out: StepOutput,
    row: int,
    action: AlertAction,
    episode: Episode,
    features: list[FeatureReason],
    model_version: str,
    detector: str,
) -> Alert:
    n = len(event.features)
    reason = _reason(out, row, features)
    state: AlertState = "resolved" if action == "resolve" else "firing"
    reason.text = sentence(state, reason, episode, event.ts_ms)
    return Alert.for_event(
        event,
        score=float(out.scores[row]),
        expected=dict(zip(event.features, out.expected[row, :n].tolist(), strict=True)),
        top_feature=event.features[min(int(out.top_feature[row]), n - 1)],
        model_version=model_version,
        detector=detector,
        action=action,
        episode=episode,
        reason=reason,
    )


def alerts_of_event(
    event: Event,
    out: StepOutput,
    row: int,
    before: np.void,
    model_version: str,
    detector: str,
) -> list[Alert]:
    """The 0, 1 or 2 alerts event `row` of `out` causes; `before`: its stream's state
    from before the event (the old episode's fields, the spread for the band)."""
    return alerts_of_round([event], out, [row], np.array([before]), model_version, detector)


def alerts_of_round(
    events: Sequence[Event],
    out: StepOutput,
    rows: Sequence[int],
    before: np.ndarray,
    model_version: str,
    detector: str,
) -> list[Alert]:
    """The alerts of a round's events `events[k]` = row `rows[k]` of `out`, whose
    states from before the round are `before[k]`, in order: 0, 1 or 2 alerts each."""
    acting = [k for k, row in enumerate(rows) if int(out.action[row]) in (OPEN, ESCALATE, RESOLVE)]
    if not acting:
        return []
    picked = [rows[k] for k in acting]
    old = before[acting]
    reasons = reasons_of_events(
        [events[k] for k in acting], out.expected[picked], old["norm_mean"], old["norm_var"]
    )
    alerts: list[Alert] = []
    for j, k in enumerate(acting):
        alerts += _event_alerts(
            events[k], out, rows[k], old[j], reasons[j], model_version, detector
        )
    return alerts


def _event_alerts(
    event: Event,
    out: StepOutput,
    row: int,
    before: np.void,
    features: list[FeatureReason],
    model_version: str,
    detector: str,
) -> list[Alert]:
    """The alerts of one acting event, given its feature reasons."""
    action = int(out.action[row])
    alerts = []
    was_in = bool(int(before["flags"]) & FLAG_IN_EPISODE)
    if action == RESOLVE or (action == OPEN and was_in):
        start = int(before["episode_start"])
        old = Episode(
            id=episode_id(event.stream, start),
            start_ms=start,
            peak=float(before["episode_peak"]),
            duration_s=max(int(before["episode_loud"]) - start, 0) / 1000.0,
        )
        alerts.append(_alert(event, out, row, "resolve", old, features, model_version, detector))
    if action in (OPEN, ESCALATE):
        start = int(out.episode_start[row])
        now = Episode(
            id=episode_id(event.stream, start),
            start_ms=start,
            peak=float(out.episode_peak[row]),
            duration_s=max(event.ts_ms - start, 0) / 1000.0,
        )
        name: AlertAction = "open" if action == OPEN else "escalate"
        alerts.append(_alert(event, out, row, name, now, features, model_version, detector))
    return alerts
