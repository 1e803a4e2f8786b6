"""The recurrent detector: one pure, batched step from (inputs, states) to (scores, states).

For every stream in the batch, at once:

1. re-warm the recurrent state if it belongs to another model version (from the ring
   buffer of recent normalised inputs kept in the state);
2. normalise x_t with the stream's running statistics from before this event;
3. compare with the prediction made at t-1, plus the change the stream's time-of-day
   profile (`detectors.season`) expects since the previous event -> per-feature error.
   The newest error alone is judged against the stream's own error distribution
   (`detectors.calibration`, source "surprise"); a run of them (asinh-compressed, short
   average) is scored by `detectors.scoring` (source "error"); a further evidence source,
   the distance of x_t from the profile's usual value at this time of day, is scored the
   same way, but only when larger than 80% of the recent largest such distance (a daily
   spike the profile cannot hold is not news every day); a third is x_t beyond the
   stream's running range (`detectors.scoring.range_score`); with a model horizon, x_t
   against the direct prediction made H events ago is judged like the newest error
   (`detectors.horizon`, source "horizon"); the largest score wins;
4. hand the evidence to the episode policy (`detectors.base.Alerting`, in `step`);
5. advance the recurrent state one step and predict t+1 (and t+H);
6. update the normalisation statistics, the error summaries, the time-of-day profile, the
   running range and the ring buffer.

No I/O, no hidden mutation: the detector holds only the (frozen) weights and parameters,
and `step` returns new state arrays without touching its inputs. Scoring an event changes
only what learning from it would change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from detectors import calibration, horizon, season
from detectors.base import Events, Evidence, StepOutput, apply_policy
from detectors.calibration import SurpriseParams
from detectors.forecaster import Heads, LoadedModel, pick_device
from detectors.normalisation import spread, surprise, update_stats
from detectors.policy import AlertPolicy
from detectors.scoring import (
    NoveltyParams,
    ScoringParams,
    peak_gate,
    range_score,
    score_errors,
    update_range,
)
from detectors.state import StateLayout


@dataclass(frozen=True)
class DetectorParams:
    norm_min_alpha: float = 1.0 / 1000  # slowest EW weight of the value statistics
    clip: float = 10.0  # normalised inputs are clipped to +-clip
    ring_len: int = 12  # 12, not 16, pays for the running range in the state record
    season_bins: int = 24  # time-of-day slots of the seasonal profile (0 = none)
    season_min_alpha: float = 0.07  # slowest EW weight of a profile slot: ~14 days of memory
    season_weight: float = 0.5  # how much of the profile's usual change the prediction adds
    # The level channel: how far x_t is from what the profile says is usual at this time of
    # day, scored against the stream's own history of that distance. It sees a day with
    # the wrong shape (a missing or a too-high daily peak) that one-step errors cannot.
    level_alpha: float = 0.2  # EW weight of the newest distance
    level_decades: float = 14.0
    level_ready: int = 24  # visits both profile slots need before their distance counts
    # A distance scores only above level_peak_ratio x its decaying peak (memory in events):
    # a narrow daily spike or a tweet burst like the ones before is not news; 0 = off.
    # Near 1.0 it hides real anomalies that follow similar ones.
    level_peak_ratio: float = 0.8
    level_peak_memory: float = 2000.0
    # Errors e -> c * asinh(e / c) (0 = off): linear for small errors, logarithmic for
    # large ones, so bursty streams (tweet counts) with frequent huge errors keep a spread
    # a Gaussian tail fits, and one burst does not saturate every channel.
    compress: float = 1.0
    scoring: ScoringParams = field(default_factory=ScoringParams)
    surprise: SurpriseParams = field(default_factory=SurpriseParams)
    novelty: NoveltyParams = field(default_factory=NoveltyParams)
    policy: AlertPolicy = field(default_factory=AlertPolicy)
    warmup: int = 48  # a stream's first events only teach: no score, so no alert


SOURCES = ("error", "surprise", "level", "range", "horizon")


class RecurrentDetector:
    """A GRU/LSTM forecaster plus per-stream normalisation, scoring and alert policy."""

    name = "vigil-rnn"

    def __init__(
        self,
        loaded: LoadedModel,
        params: DetectorParams | None = None,
        device: str = "cpu",
    ) -> None:
        self.loaded = loaded
        self.params = params or DetectorParams()
        self.device = pick_device(device)
        self.model = loaded.model.to(self.device).eval()
        cfg = loaded.config
        self.layout = StateLayout(
            cfg.state_size,
            cfg.max_features,
            self.params.ring_len,
            self.params.season_bins,
            cfg.horizon,
        )
        # the per-stream summaries of errors a new model version makes differently
        self._summaries = ("surprise", "horizon_surprise") if cfg.horizon > 0 else ("surprise",)

    @property
    def version(self) -> str:
        return self.loaded.version

    @property
    def max_features(self) -> int:
        return self.loaded.config.max_features

    def _run(
        self, z: np.ndarray, mask: np.ndarray, hidden: np.ndarray
    ) -> tuple[Heads[np.ndarray], np.ndarray]:
        """One model step -> (every head [B, F] as numpy arrays, new hidden state)."""
        inputs = torch.from_numpy(np.concatenate([z, mask.astype(np.float32)], axis=1))
        state = torch.from_numpy(np.array(hidden, dtype=np.float32, order="C"))  # own strides
        heads, new_state = self.model.step(inputs.to(self.device), state.to(self.device))
        return Heads(*(h.cpu().numpy() for h in heads)), new_state.cpu().numpy()

    def rewarm(self, states: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Rebuild hidden state and prediction from each stream's ring buffer."""
        states = states.copy()
        ring = states["ring"].astype(np.float32)  # [B, K, F], newest last
        k = ring.shape[1]
        valid_from = k - np.minimum(states["count"], k)
        hidden = np.zeros_like(states["hidden"])
        pred = np.zeros_like(states["pred"])
        for i in range(k):
            live = valid_from <= i
            if not live.any():
                continue
            heads, h = self._run(ring[live, i], mask[live], hidden[live])
            hidden[live], pred[live] = h, heads.loc
        states["hidden"], states["pred"] = hidden, pred
        states["model_tag"] = self.loaded.tag
        if self.loaded.config.horizon > 0:
            horizon.invalidate(states)
        return states

    def _level(
        self,
        z_full: np.ndarray,
        mask: np.ndarray,
        states: np.ndarray,
        lo_hi_w: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score the distance of x_t from the profile -> (score, level_count, level_err).

        Only once both profile slots around x_t have seen `level_ready` events does the
        distance count (and get learned): an unfinished profile is far from everything.
        Its first `warmup` learned distances are not scored, as a stream's first
        events are not: until then the distance's statistics have no spread (the first
        one is judged against a mean and variance of zero), so any distance at all scored
        1.0 and every stream alerted once on the day its profile became ready. The peak
        is learned during the warm-up too, so the gate is set when scoring starts.
        level_err holds the distance's short average, its long-term mean and variance, and
        its decaying peak (`detectors.scoring.peak_gate`).
        """
        p = self.params
        b = len(z_full)
        count, err = states["level_count"].astype(np.int64), states["level_err"]
        if lo_hi_w is None:
            return np.zeros(b, np.float32), count, err
        lo, hi, upper_w = lo_hi_w
        rows = np.arange(b)
        visits = np.minimum(states["season_visits"][rows, lo], states["season_visits"][rows, hi])
        ready = (visits >= p.level_ready) & (states["count"] > 0)
        usual = season.value(states["season"], lo, hi, upper_w)
        dist = (np.abs(z_full - usual) * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)
        score, short, e_mean, e_var = score_errors(
            dist,
            count,
            err[:, 0],
            err[:, 1],
            err[:, 2],
            p.scoring,
            p.level_alpha,
            p.level_decades,
        )
        if p.level_peak_ratio > 0:
            score, peak = peak_gate(score, dist, err[:, 3], p.level_peak_ratio, p.level_peak_memory)
        else:
            peak = err[:, 3]
        new_err = np.where(ready[:, None], np.stack([short, e_mean, e_var, peak], axis=1), err)
        new_count = np.where(ready, count + 1, count)
        scored = ready & (count >= p.warmup)
        return np.where(scored, score, 0.0).astype(np.float32), new_count, new_err

    def fresh(self, n: int) -> np.ndarray:
        return self.layout.fresh(n)

    def step(
        self,
        x: np.ndarray,
        mask: np.ndarray,
        states: np.ndarray,
        ts_ms: np.ndarray | None = None,
    ) -> StepOutput:
        """x [B, F] float, mask [B, F] bool (feature slots in use), states [B] -> StepOutput:
        `score` followed by the episode policy (`detectors.base.Alerting`).

        ts_ms [B] int64 epoch milliseconds of each event feeds the time-of-day profile and
        the policy's durations; without it (a replay of bare values) events are taken to
        be one second apart and the profile stays empty.
        """
        if ts_ms is None:
            ts = states["count"].astype(np.int64) * 1000
            evidence, new_states = self._score(x, mask, states, None)
        else:
            ts = np.asarray(ts_ms, np.int64)
            evidence, new_states = self._score(x, mask, states, ts)
        return apply_policy(evidence, ts, new_states, self.params.policy)

    def score(self, events: Events, states: np.ndarray) -> tuple[Evidence, np.ndarray]:
        return self._score(events.x, events.mask, states, events.ts_ms)

    def _profile_shift(
        self,
        now: np.ndarray | None,
        states: np.ndarray,
        mask: np.ndarray,
        count: np.ndarray,
        z: np.ndarray,
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
        """The change the time-of-day profile expects since the previous event, and where
        `now` falls in the profile (None without timestamps or a profile).

        The model predicts as if the day had no shape; the profile adds the change this
        stream usually makes between the previous event's time of day and now."""
        if now is None:
            return np.zeros_like(z), None
        bins = self.params.season_bins
        lo, hi, upper_w = season.position(now, bins)
        usual_now = season.value(states["season"], lo, hi, upper_w)
        usual_then = season.value(states["season"], *season.position(states["last_ts"], bins))
        shift = np.where((count > 0)[:, None] & mask, usual_now - usual_then, 0.0)
        return shift, (lo, hi, upper_w)

    @staticmethod
    def _gap_seconds(ts_ms: np.ndarray | None, states: np.ndarray, count: np.ndarray) -> np.ndarray:
        """Seconds since each stream's previous event (0 for its first; one second apart
        when the caller gives no times, as `step` assumes)."""
        if ts_ms is None:
            return np.ones(len(count))
        gap = (np.asarray(ts_ms, np.int64) - states["last_ts"]).astype(np.float64) / 1000.0
        return np.where(count > 0, np.maximum(gap, 0.0), 0.0)

    def _judge(
        self,
        error: np.ndarray,
        valid: np.ndarray,
        field: str,
        states: np.ndarray,
        gap_s: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """An error [B] against the stream's summary of its own errors (`states[field]`) ->
        (score, new summary); nothing is scored or learnt where not `valid`."""
        p, summary = self.params, states[field]
        score = calibration.surprise_score(error, summary, p.surprise)
        learnt = calibration.learn(error, gap_s, summary, p.surprise, states["count"] >= p.warmup)
        return np.where(valid, score, 0.0), np.where(valid[:, None], learnt, summary)

    def _score(
        self,
        x: np.ndarray,
        mask: np.ndarray,
        states: np.ndarray,
        ts_ms: np.ndarray | None,
    ) -> tuple[Evidence, np.ndarray]:
        p = self.params
        x = np.where(mask, x, 0.0).astype(np.float32)
        count = states["count"].astype(np.int64)
        stale = (count > 0) & (states["model_tag"] != self.loaded.tag)
        states = states.copy()
        if stale.any():
            states[stale] = self.rewarm(states[stale], mask[stale])
            for name in self._summaries:
                states[name][stale] = calibration.restart(states[name][stale], p.surprise)
        states["model_tag"] = self.loaded.tag

        mean, var = states["norm_mean"], states["norm_var"]
        z_full = surprise(x, mask, mean, var, count)
        z = np.clip(z_full, -p.clip, p.clip)
        now = None if ts_ms is None or p.season_bins == 0 else np.asarray(ts_ms, np.int64)
        shift, lo_hi_w = self._profile_shift(now, states, mask, count, z)
        pred = states["pred"] + p.season_weight * shift
        expected = (mean + spread(var, mean) * pred) * mask
        err = np.abs(z_full - pred) * mask
        n_present = np.maximum(mask.sum(axis=1), 1)
        raw_error = np.where(count == 0, 0.0, err.sum(axis=1) / n_present)
        error = raw_error
        if p.compress > 0:
            error = p.compress * np.arcsinh(error / p.compress)
        top = err.argmax(axis=1)

        error_score, short, e_mean, e_var = score_errors(
            error, count, states["err_short"], states["err_mean"], states["err_var"], p.scoring
        )
        gap_s = self._gap_seconds(ts_ms, states, count)
        surprise_score, states["surprise"] = self._judge(
            raw_error, count > 0, "surprise", states, gap_s
        )
        horizon_score = np.zeros(len(x), np.float32)
        if self.loaded.config.horizon > 0:
            ahead_error, valid = horizon.surprise(z_full, mask, states)
            horizon_score, states["horizon_surprise"] = self._judge(
                horizon.as_error(ahead_error), valid, "horizon_surprise", states, gap_s
            )
        level_score, level_count, level_err = self._level(z_full, mask, states, lo_hi_w)
        low, high = states["range_low"], states["range_high"]
        novelty = range_score(x, mask, low, high, count, p.novelty)
        by_source = np.stack([error_score, surprise_score, level_score, novelty, horizon_score], 1)
        by_source = np.where((count + 1 > p.warmup)[:, None], by_source, 0.0).astype(np.float32)
        score = by_source.max(axis=1)

        heads, hidden = self._run(z, mask, states["hidden"])
        if self.loaded.config.horizon > 0:
            # a prediction made from an anomalous input is no evidence about later values
            calm = mask & (score < p.policy.clear)[:, None]
            horizon.push(states, heads.ahead_loc, heads.ahead_log_scale, calm)
        new_mean, new_var = update_stats(x, mask, mean, var, count, p.norm_min_alpha)
        states["range_low"], states["range_high"] = update_range(x, mask, low, high, count)
        if now is not None and lo_hi_w is not None:
            states["season"], states["season_visits"] = season.update(
                states["season"],
                states["season_visits"],
                *lo_hi_w,
                z,
                mask & (count > 0)[:, None],
                p.season_min_alpha,
            )
        if ts_ms is not None:
            states["last_ts"] = np.asarray(ts_ms, np.int64)
        states["pred"] = np.where(mask, heads.loc, 0.0)
        states["hidden"] = hidden
        states["norm_mean"], states["norm_var"] = new_mean, new_var
        states["err_short"], states["err_mean"], states["err_var"] = short, e_mean, e_var
        states["level_count"], states["level_err"] = level_count, level_err
        states["ring"][:, :-1] = states["ring"][:, 1:]
        states["ring"][:, -1] = z
        states["count"] = np.minimum(count + 1, np.iinfo(np.uint32).max)
        evidence = Evidence(
            score=score,
            sources=SOURCES,
            by_source=by_source,
            expected=expected.astype(np.float32),
            top_feature=top,
            rewarmed=stale,
        )
        return evidence, states
