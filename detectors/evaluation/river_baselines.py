"""River detectors as baselines for the NAB backtest, behind Vigil's detector interface.

A backtest feeds each series one value at a time and takes one score back per value, so
every detector here is a `Detector`: ``step(x)`` scores ``x`` with what was learnt from
the values before it, then learns ``x`` (no look-ahead). Scores lie in [0, 1], higher
meaning more anomalous. Parameters are fixed for every series: nothing is tuned per file
and nothing sees a file's global range; scaling is always learnt online.

`RiverStreams` puts them behind `detectors.base`'s stream-detector interface and the same
episode policy as Vigil's detector, so a backtest compares alerts with alerts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np
import numpy.typing as npt
from river import anomaly, compose, linear_model, preprocessing, time_series

from detectors.base import Events, Evidence, StepOutput, apply_policy
from detectors.policy import EPISODE_FIELDS, AlertPolicy


class Detector(Protocol):
    """Score a value against the past, then learn it."""

    def step(self, x: float) -> float: ...


def _check(x: float) -> float:
    value = float(x)
    if not math.isfinite(value):
        raise ValueError(f"value must be finite, got {x!r}")
    return value


class HalfSpaceTreesDetector:
    """River's Half-Space Trees on the value min-max scaled with running bounds.

    HST assumes features in [0, 1]; a running MinMaxScaler gets them there without
    peeking at the series' future range (a new extreme lands outside [0, 1], which
    the trees still route). HST's own score is already in [0, 1].

    On a single feature HST is a density estimate of the scaled value: a spike beyond the
    running maximum shares the top cell with the largest normal values, so it stands out
    only modestly. That is the baseline as River ships it; no features were added to help.
    """

    def __init__(self, n_trees: int = 10, height: int = 8, window_size: int = 250) -> None:
        self._model = compose.Pipeline(
            preprocessing.MinMaxScaler(),
            anomaly.HalfSpaceTrees(
                n_trees=n_trees, height=height, window_size=window_size, seed=42
            ),
        )

    def step(self, x: float) -> float:
        features = {"value": _check(x)}
        score = float(self._model.score_one(features))
        self._model.learn_one(features)
        return min(max(score, 0.0), 1.0)


class SnarimaxDetector:
    """River's PredictiveAnomalyDetection (PAD) around a SNARIMAX one-step forecaster.

    Model: ARIMA(1, 1, 0), no seasonal part. Differencing once copes with the level shifts
    and drifts common in NAB and one AR lag on the differences follows short-term
    momentum; a seasonal term would need one season length for every series, and NAB
    mixes 5-minute, hourly and irregular sampling. The regressor is online linear
    regression on standardised lags with a standardised target, so series from 0.1 to
    1e8 train at the same step size. MA terms are left out: fitted by SGD they are noisy.

    Score: PAD maps the squared forecast error e into [0, 1] through running error
    statistics, e / (mean(e) + n_std * std(e)), clipped at 1. That is the normalisation
    wanted (learnt online, the same threshold means the same on every series, no global
    min/max), so the value is passed through; only its clip needed care. With PAD's usual
    n_std = 3 many rows tie at 1.0 and no threshold can rank them; with n_std = 30 the
    clip is reached only by errors tens of deviations out (mostly right after warm-up,
    when the statistics are still empty) and the scores keep their order. A non-finite
    score (a diverged
    forecaster) counts as fully anomalous. PAD updates its error statistics inside
    ``score_one``, one more reason for the single ``step`` call: each value is scored
    exactly once.
    """

    def __init__(self, n_std: float = 30.0, warmup: int = 50) -> None:
        forecaster = time_series.SNARIMAX(
            p=1,
            d=1,
            q=0,
            regressor=compose.Pipeline(
                preprocessing.StandardScaler(),
                preprocessing.TargetStandardScaler(linear_model.LinearRegression()),
            ),
        )
        self._model = anomaly.PredictiveAnomalyDetection(
            forecaster, horizon=1, n_std=n_std, warmup_period=warmup
        )

    def step(self, x: float) -> float:
        value = _check(x)
        score = float(self._model.score_one({}, value))
        self._model.learn_one({}, value)
        if not math.isfinite(score):
            return 1.0
        return min(max(score, 0.0), 1.0)


BASELINES: dict[str, Callable[[], Detector]] = {
    "hst": HalfSpaceTreesDetector,
    "snarimax": SnarimaxDetector,
}


def run_series(detector: Detector, values: Iterable[float]) -> npt.NDArray[np.float64]:
    """Scores for a whole series, one `step` per value in order."""
    return np.fromiter((detector.step(x) for x in values), dtype=np.float64)


#: A River stream's state record: which model object is its, plus the policy's fields.
RIVER_DTYPE = np.dtype([("slot", "<i8"), *EPISODE_FIELDS])


class RiverStreams:
    """River baselines as a Vigil `StreamDetector`, so they replay and alert like Vigil.

    With the same `StreamDetector` interface the backtest replays a River baseline through
    the same batched path and the same episode policy as the recurrent detector, and NAB
    or event-wise figures compare alerts with alerts. River models are Python objects,
    not arrays: each stream's record holds a slot into this object's list of models, so
    unlike Vigil's detector this one is stateful (fine for a backtest, not for a worker).
    River's detectors are univariate here: a stream's first value column is scored.
    """

    max_features = 4

    def __init__(self, name: str, policy: AlertPolicy) -> None:
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}; use one of {', '.join(BASELINES)}")
        self.name = name
        self.policy = policy
        self._models: list[Detector] = []

    def fresh(self, n: int) -> np.ndarray:
        states = np.zeros(n, dtype=RIVER_DTYPE)
        states["slot"] = np.arange(len(self._models), len(self._models) + n)
        self._models.extend(BASELINES[self.name]() for _ in range(n))
        return states

    def score(self, events: Events, states: np.ndarray) -> tuple[Evidence, np.ndarray]:
        values = events.x[:, 0].astype(float).tolist()
        slots = states["slot"].tolist()
        score = np.array([self._models[k].step(v) for k, v in zip(slots, values, strict=True)])
        score = score.astype(np.float32)
        evidence = Evidence(
            score=score,
            sources=(self.name,),
            by_source=score[:, None],
            expected=np.zeros(events.x.shape, np.float32),
            top_feature=np.zeros(len(score), np.int64),
        )
        return evidence, states.copy()

    def step(
        self, x: np.ndarray, mask: np.ndarray, states: np.ndarray, ts_ms: np.ndarray | None
    ) -> StepOutput:
        """`score` then the episode policy, with the recurrent detector's `step` signature."""
        ts = np.zeros(len(x), np.int64) if ts_ms is None else np.asarray(ts_ms, np.int64)
        evidence, new_states = self.score(Events(x, mask, ts), states)
        return apply_policy(evidence, ts, new_states, self.policy)
