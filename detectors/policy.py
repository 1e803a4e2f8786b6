"""Alert policy: when a score becomes an alert (threshold, hysteresis, cooldown, warm-up).

Kept apart from scoring, like River's thresholding wrappers, so the score stays a pure
measure of surprise and the policy is one small, separately tested rule:

- no alert while a stream is warming up (its first `warmup` events);
- an alert fires when the score reaches `threshold` and the stream is not already in an
  alert episode and not cooling down;
- the episode ends when the score falls to `clear` or below (hysteresis), so a score
  hovering around the threshold gives one alert, not a stream of them;
- after an alert, `cooldown` events pass before the next may fire.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.state import FLAG_IN_ALERT


@dataclass(frozen=True)
class AlertPolicy:
    threshold: float = 0.5
    clear: float = 0.3
    cooldown: int = 30
    warmup: int = 48


def apply_policy(
    scores: np.ndarray,
    count: np.ndarray,
    flags: np.ndarray,
    cooldown: np.ndarray,
    policy: AlertPolicy,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """B streams' scores -> (alert [B] bool, new flags, new cooldown)."""
    warm = count > policy.warmup
    in_alert = (flags & FLAG_IN_ALERT) != 0
    fire = warm & ~in_alert & (cooldown == 0) & (scores >= policy.threshold)
    still_in = (in_alert & (scores > policy.clear)) | fire
    new_flags = np.where(
        still_in, flags | FLAG_IN_ALERT, flags & np.uint8(0xFF ^ FLAG_IN_ALERT)
    ).astype(np.uint8)
    new_cooldown = np.where(fire, policy.cooldown, np.maximum(cooldown.astype(np.int64) - 1, 0))
    return fire, new_flags, new_cooldown.astype(np.uint16)
