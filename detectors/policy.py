"""The episode policy: when a detector's score becomes an alert, in durations, not events.

Kept apart from scoring (see `detectors.base.Alerting`), so a score stays a pure measure
of rarity and the policy is one small, separately tested rule, the same for every detector:

- an episode OPENs (one alert) when a stream's score reaches `threshold` outside an episode;
- inside an episode, a new alert (ESCALATE) fires only when the score is clearly stronger
  than the episode's peak so far (`escalate_by` more: on the detectors' log scale, about
  ten times rarer), so an incident pages once, and again only if it gets worse;
- the episode RESOLVEs once `quiet_seconds` have passed without a score at or above
  `clear`; the first quiet event after that time carries the RESOLVE (there are no timers:
  a stream that stops sending stays in its episode until its next event, and a loud event
  after a long gap continues the episode instead of ending it and opening another).

Its memory is four fields of the stream's state record (EPISODE_FIELDS), so any detector
whose record carries them can be wrapped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NONE, OPEN, ESCALATE, RESOLVE = 0, 1, 2, 3
ACTIONS = ("none", "open", "escalate", "resolve")
FLAG_IN_EPISODE = 1

EPISODE_FIELDS: list[tuple[str, str]] = [
    ("flags", "u1"),
    ("episode_peak", "<f4"),
    ("episode_start", "<i8"),  # epoch ms of the OPEN
    ("episode_loud", "<i8"),  # epoch ms of the episode's latest score >= clear
]
EPISODE_DTYPE = np.dtype(EPISODE_FIELDS)


@dataclass(frozen=True)
class AlertPolicy:
    threshold: float = 0.5
    clear: float = 0.3
    quiet_seconds: float = 3600.0  # an episode ends after this long without a score >= clear
    escalate_by: float = 0.1  # a re-alert needs the episode's peak + this

    def __post_init__(self) -> None:
        if not 0.0 <= self.clear <= self.threshold:
            raise ValueError("clear must lie between 0 and threshold")
        if self.quiet_seconds < 0 or self.escalate_by <= 0:
            raise ValueError("quiet_seconds must be >= 0 and escalate_by > 0")


def decide(
    scores: np.ndarray, ts_ms: np.ndarray, states: np.ndarray, policy: AlertPolicy
) -> tuple[np.ndarray, np.ndarray]:
    """B scores at times ts_ms, states carrying EPISODE_FIELDS -> (action [B] int8, the new
    episode fields [B] of EPISODE_DTYPE). Pure: `states` is read, not written."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    was_in = (states["flags"] & FLAG_IN_EPISODE) != 0
    quiet_ms = np.int64(round(policy.quiet_seconds * 1000))
    # An event that is itself loud carries the episode on, however long it came after the
    # last loud one: on an hourly stream every event comes quiet_seconds after the last.
    ended = was_in & (ts - states["episode_loud"] >= quiet_ms) & (scores < policy.clear)
    in_ep = was_in & ~ended
    peak = states["episode_peak"].astype(np.float32)
    strong = scores >= policy.threshold
    opened = ~in_ep & strong
    escalated = in_ep & strong & (scores >= peak + policy.escalate_by)
    action = np.where(opened, OPEN, np.where(escalated, ESCALATE, np.where(ended, RESOLVE, NONE)))
    now_in = in_ep | opened
    out = np.zeros(len(scores), dtype=EPISODE_DTYPE)
    out["flags"] = np.where(
        now_in, states["flags"] | FLAG_IN_EPISODE, states["flags"] & ~np.uint8(FLAG_IN_EPISODE)
    )
    out["episode_peak"] = np.where(opened, scores, np.where(in_ep, np.maximum(peak, scores), 0.0))
    out["episode_start"] = np.where(opened, ts, np.where(in_ep, states["episode_start"], 0))
    loud = now_in & (scores >= policy.clear)
    out["episode_loud"] = np.where(loud, ts, np.where(in_ep, states["episode_loud"], 0))
    return action.astype(np.int8), out
