"""The H-step prediction ring and its surprise (detectors.horizon), alone and in the detector."""

from __future__ import annotations

import math

import numpy as np
import torch

from detectors import horizon
from detectors.detector import SOURCES, RecurrentDetector
from detectors.forecaster import Forecaster, ForecasterConfig, LoadedModel
from detectors.state import StateLayout


def layout(h: int = 3, f: int = 2) -> StateLayout:
    return StateLayout(state_size=4, max_features=f, horizon=h)


def test_the_oldest_prediction_judges_the_arriving_value_in_its_own_scale() -> None:
    states = layout().fresh(2)
    mask = np.array([[True, False], [True, True]])
    for k in range(3):  # predictions made at events 0, 1, 2 for events 3, 4, 5
        loc = np.full((2, 2), float(k), np.float32)
        horizon.push(states, loc, np.full((2, 2), math.log(0.5), np.float32), mask)
    states["count"] = 3
    z = np.array([[1.0, 99.0], [2.0, 1.0]], np.float32)
    value, valid = horizon.surprise(z, mask, states)
    assert valid.all()
    # stream 0 uses slot 0 only: |1 - 0| / 0.5; stream 1 averages |2 - 0| / 0.5 and |1 - 0| / 0.5
    assert np.allclose(value, [2.0, 3.0], rtol=0.06)  # scales are stored to within 5%
    states["count"] = 2  # a stream younger than the horizon has no prediction for now
    assert not horizon.surprise(z, mask, states)[1].any()


def test_missing_or_uninformative_predictions_are_not_judged() -> None:
    states = layout().fresh(2)
    mask = np.ones((2, 2), bool)
    narrow = np.full((2, 2), math.log(0.2), np.float32)
    for _ in range(3):
        horizon.push(states, np.zeros((2, 2), np.float32), narrow, mask)
    states["count"] = 10
    z = np.ones((2, 2), np.float32)
    assert horizon.surprise(z, mask, states)[1].all()
    horizon.invalidate(states[:1])  # a view: the first stream's model changed
    value, valid = horizon.surprise(z, mask, states)
    assert valid.tolist() == [False, True] and value[0] == 0.0
    # a slot the stream did not use when the prediction was made counts as missing
    fresh = layout().fresh(1)
    for _ in range(3):
        horizon.push(fresh, np.zeros((1, 2), np.float32), narrow[:1], np.array([[True, False]]))
    fresh["count"] = 3
    assert not horizon.surprise(np.ones((1, 2), np.float32), np.ones((1, 2), bool), fresh)[1][0]
    # a prediction as wide as the stream's own spread says nothing the level does not
    wide = layout().fresh(1)
    for _ in range(3):
        horizon.push(wide, np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32), mask[:1])
    wide["count"] = 3
    assert not horizon.surprise(np.ones((1, 2), np.float32), mask[:1], wide)[1][0]


def _detector(ahead_bias: float) -> RecurrentDetector:
    """A tiny GRU whose horizon head predicts `ahead_bias` for every slot with scale 0.1."""
    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig("gru", hidden_size=4, max_features=1, horizon=3))
    assert model.ahead is not None
    with torch.no_grad():
        model.ahead.weight.zero_()
        model.ahead.bias.copy_(torch.tensor([0.0, ahead_bias, math.log(0.1)]))
    return RecurrentDetector(LoadedModel(model.eval(), "tiny", "0" * 64))


def test_the_detector_scores_the_horizon_head_and_nothing_else_depends_on_it() -> None:
    values = np.random.default_rng(0).normal(0, 1, 300).astype(np.float32)
    mask = np.ones((1, 1), bool)
    runs, rings = [], []
    for bias in (0.0, 3.0):
        det = _detector(bias)
        states = det.fresh(1)
        rows = []
        for t, v in enumerate(values):
            out = det.step(np.array([[v]]), mask, states, np.array([t * 1000]))
            states = out.states
            rows.append(out.by_source[0])
        runs.append(np.array(rows))
        rings.append(states["ahead"][0, :, 0].astype(float))
    k = SOURCES.index("horizon")
    others = [i for i in range(len(SOURCES)) if i != k]
    assert np.array_equal(runs[0][:, others], runs[1][:, others])
    assert rings[0].tolist() == [0.0] * 3 and rings[1].tolist() == [3.0] * 3
    assert not np.array_equal(runs[0][:, k], runs[1][:, k])
    assert (runs[0][:, k] > 0).any() and (runs[1][:, k] > 0).any()
