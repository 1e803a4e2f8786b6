"""The detector step: batched equals one at a time, re-warm on a new model, warm-up, spikes."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.calibration import SurpriseParams
from detectors.detector import DetectorParams, RecurrentDetector
from detectors.evaluation.replay import replay
from detectors.forecaster import LoadedModel, load_checkpoint, shipped_model_path
from detectors.scoring import NoveltyParams, ScoringParams


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    return load_checkpoint(shipped_model_path("gru", 64).read_bytes(), version="test-a")


def streams(n: int, steps: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None]
    level = rng.uniform(-50, 50, size=(1, n))
    scale = np.exp(rng.uniform(-2, 4, size=(1, n)))
    return (level + scale * (np.sin(t / 7.0) + 0.2 * rng.normal(size=(steps, n)))).astype(
        np.float32
    )


def test_a_batch_gives_the_same_outputs_as_single_streams(loaded: LoadedModel) -> None:
    det = RecurrentDetector(loaded)
    data = streams(5, 80)
    mask = np.zeros((5, 4), bool)
    mask[:, 0] = True
    batch = det.layout.fresh(5)
    singles = [det.layout.fresh(1) for _ in range(5)]
    for t in range(80):
        x = np.zeros((5, 4), np.float32)
        x[:, 0] = data[t]
        out = det.step(x, mask, batch)
        batch = out.states
        for i in range(5):
            one = det.step(x[i : i + 1], mask[i : i + 1], singles[i])
            singles[i] = one.states
            np.testing.assert_allclose(one.scores, out.scores[i : i + 1], atol=1e-4)
            np.testing.assert_allclose(one.expected, out.expected[i : i + 1], rtol=1e-4, atol=1e-3)
    for i in range(5):
        np.testing.assert_allclose(singles[i]["hidden"][0], batch["hidden"][i], atol=1e-4)
        assert singles[i]["count"][0] == batch["count"][i] == 80


def test_step_is_pure_its_inputs_are_never_changed(loaded: LoadedModel) -> None:
    """The worker keeps states in memory between saves and retries a batch after a Redis
    error: a step that wrote into the arrays it was given would corrupt that retry."""
    det = RecurrentDetector(loaded)
    data = streams(3, 120, seed=11)
    states = det.layout.fresh(3)
    mask = np.zeros((3, 4), bool)
    mask[:, 0] = True
    for t in range(120):
        x = np.zeros((3, 4), np.float32)
        x[:, 0] = data[t]
        ts = np.full(3, t * 300_000, np.int64)
        kept = (x.copy(), mask.copy(), states.copy(), ts.copy())
        out = det.step(x, mask, states, ts)
        for given, before in zip((x, mask, states, ts), kept, strict=True):
            np.testing.assert_array_equal(given, before)
        assert out.states is not states
        states = out.states


def test_a_state_from_another_model_version_is_rewarmed(loaded: LoadedModel) -> None:
    old = RecurrentDetector(loaded)
    new = RecurrentDetector(LoadedModel(loaded.model, "test-b", loaded.sha256))
    data = streams(3, 60, seed=1)
    mask = np.zeros((3, 4), bool)
    mask[:, 0] = True
    states = old.layout.fresh(3)
    for t in range(60):
        x = np.zeros((3, 4), np.float32)
        x[:, 0] = data[t]
        states = old.step(x, mask, states).states
    assert (states["model_tag"] == loaded.tag).all()

    x = np.zeros((3, 4), np.float32)
    x[:, 0] = data[-1]
    out = new.step(x, mask, states)
    assert out.rewarmed.all()
    assert (out.states["model_tag"] == new.loaded.tag).all()
    # Same weights, so re-warming from the last ring_len inputs lands near the true state.
    rewarmed = new.rewarm(states, mask)
    assert np.corrcoef(rewarmed["hidden"].ravel(), states["hidden"].ravel())[0, 1] > 0.9
    again = new.step(x, mask, out.states)
    assert not again.rewarmed.any()


def test_warmup_never_alerts_and_a_spike_does(loaded: LoadedModel) -> None:
    det = RecurrentDetector(loaded)
    data = streams(4, 400, seed=2)
    spread = data.max(axis=0) - data.min(axis=0)
    data[30] += 5 * spread  # inside warm-up (48): never an alert
    data[300] += 20 * spread
    results = replay(det, [data[:, i : i + 1] for i in range(4)])
    for r in results:
        assert not r.alerts[:48].any()
        # The stream has shown a 5-spread spike (at 30): one four times larger is news.
        assert r.scores[300] >= 0.5
        assert r.alerts[300]
        assert r.scores.min() >= 0.0 and r.scores.max() <= 1.0


def test_timestamps_feed_the_profile_and_a_batch_matches_single_streams(
    loaded: LoadedModel,
) -> None:
    det = RecurrentDetector(loaded)
    data = streams(3, 600, seed=4)
    ts = [np.arange(600, dtype=np.int64) * 300_000 + i * 7_000_000 for i in range(3)]
    together = replay(det, [data[:, i : i + 1] for i in range(3)], ts=ts)
    for i in range(3):
        alone = replay(det, [data[:, i : i + 1]], ts=[ts[i]])[0]
        np.testing.assert_allclose(alone.scores, together[i].scores, atol=1e-4)
    without = replay(det, [data[:, 0:1]])[0]
    assert not np.allclose(without.expected[400:], together[0].expected[400:])
    with pytest.raises(ValueError, match="one timestamp per row"):
        replay(det, [data[:, 0:1]], ts=[ts[0][:10]])


def test_a_day_missing_its_daily_peak_is_seen_by_the_profile_distance(
    loaded: LoadedModel,
) -> None:
    """One-step errors barely change when a daily peak simply does not come (the series
    just stays low, as it does every night); the distance from the time-of-day profile
    does, and it is what scores that day."""
    det = RecurrentDetector(loaded)
    rng = np.random.default_rng(5)
    steps, day = 288 * 12, 288
    t = np.arange(steps)
    peak = ((t % day) >= 120) & ((t % day) < 180)
    values = 20.0 + 60.0 * peak + rng.normal(0, 1.0, steps)
    missing = slice(10 * day + 120, 10 * day + 180)
    values[missing] = 20.0 + rng.normal(0, 1.0, 60)
    ts = t.astype(np.int64) * 300_000
    on = replay(det, [values[:, None].astype(np.float32)], ts=[ts])[0]
    off = replay(
        RecurrentDetector(loaded, DetectorParams(level_decades=1e9)),
        [values[:, None].astype(np.float32)],
        ts=[ts],
    )[0]
    assert on.alerts[missing].any()
    assert on.scores[missing].max() > off.scores[missing].max() + 0.3
    # The normal days before it (after two days of learning) stay quiet.
    assert not on.alerts[3 * day : 10 * day].any()


def test_a_climb_past_every_earlier_value_is_seen_by_the_range_channel(
    loaded: LoadedModel,
) -> None:
    """A slow ramp to a level the stream has never shown makes no large one-step error;
    the running range sees the first value past it, the model-error channels do not."""
    rng = np.random.default_rng(6)
    values = 50.0 + 10.0 * np.sin(np.arange(2000) / 20.0) + rng.normal(0, 0.5, 2000)
    values[1500:] += np.minimum(np.arange(500) * 0.05, 12.0)  # up to 60% past the old max
    series = [values[:, None].astype(np.float32)]
    on = replay(RecurrentDetector(loaded), series)[0]
    off_params = DetectorParams(novelty=NoveltyParams(enabled=False))
    off = replay(RecurrentDetector(loaded, off_params), series)[0]
    assert not on.alerts[100:1500].any()
    assert on.alerts[1500:].any()
    assert not off.alerts[1500:].any()


def test_heavy_tailed_iid_streams_stay_quiet_when_their_profile_becomes_ready(
    loaded: LoadedModel,
) -> None:
    """Card-like amounts (lognormal, a mild daily shape, no anomaly): the profile distance
    used to score 1.0 on the day the profile became ready (its first distances were judged
    against statistics with no spread), so every stream alerted once there. Now that day
    is quiet and alerts stay rare (fewer than one per stream in eight days), while a
    lasting rise of the same streams' level is still found. Only the level channel scores.
    """
    rng = np.random.default_rng(7)
    n, steps, day = 20, 1152, 144  # eight days of 10-minute events; ready after two
    t = np.arange(steps)
    shape = 0.3 * np.sin(2 * np.pi * (t % day) / day)
    spread = rng.uniform(0.4, 0.9, (n, 1))
    log_amount = np.log(35.0) + shape + spread * rng.normal(size=(n, steps))
    ts = [t.astype(np.int64) * 600_000] * n
    params = DetectorParams(
        scoring=ScoringParams(decades=1e9),
        surprise=SurpriseParams(expected=1e-100),
        novelty=NoveltyParams(enabled=False),
    )
    det = RecurrentDetector(loaded, params)
    normal = replay(det, [np.exp(a)[:, None].astype(np.float32) for a in log_amount], ts=ts)
    assert not any(r.alerts[: 3 * day].any() for r in normal)
    assert sum(int(r.alerts.sum()) for r in normal) < n
    shifted = log_amount.copy()
    shifted[:, 6 * day :] += 1.5
    raised = replay(det, [np.exp(a)[:, None].astype(np.float32) for a in shifted], ts=ts)
    assert all(r.alerts[6 * day :].any() for r in raised)
