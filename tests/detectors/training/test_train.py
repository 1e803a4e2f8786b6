"""Training on the synthetic corpus yields a checkpoint that serving can load and step."""

from __future__ import annotations

import numpy as np
import torch

from detectors.forecaster import Forecaster, ForecasterConfig, checkpoint_bytes, load_checkpoint
from detectors.training.synthetic import generate_corpus
from detectors.training.train import (
    TrainConfig,
    masked_loss,
    normalise_sequences,
    target_steps,
    train_forecaster,
    train_generic,
)


def test_tiny_training_run_gives_a_loadable_checkpoint() -> None:
    config = ForecasterConfig("gru", hidden_size=8, max_features=2)
    model, report = train_generic(
        config, n_series=16, length=65, train=TrainConfig(epochs=1, seq_len=32, batch_size=8)
    )
    assert report.epochs_run == 1
    assert np.isfinite(report.best_val_loss)
    loaded = load_checkpoint(checkpoint_bytes(model, {"trained_on": "synthetic"}))
    assert loaded.config == config
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor)
    heads, state = loaded.model.step(torch.zeros(3, 4), torch.zeros(3, config.state_size))
    assert all(h.shape == (3, 2) for h in heads) and state.shape == (3, 8)


def test_synthetic_corpus_is_seeded_and_normalises_to_finite_inputs() -> None:
    values, mask = generate_corpus(8, 40, 2, seed=3)
    again, _ = generate_corpus(8, 40, 2, seed=3)
    assert np.array_equal(values, again)
    assert mask[:, :, 0].all()
    z = normalise_sequences(values, mask)
    assert np.isfinite(z).all() and np.abs(z).max() <= 10.0
    assert (z[~mask] == 0).all()


def test_with_a_horizon_the_loss_fits_the_value_h_steps_ahead() -> None:
    """The windows carry `horizon` steps beyond the inputs, and only the horizon head
    sees the last ones: changing them changes the loss, changing them back restores it."""
    torch.manual_seed(0)
    config = ForecasterConfig("gru", hidden_size=8, max_features=1, horizon=5)
    model = Forecaster(config)
    assert target_steps(config) == 5
    z = torch.randn(4, 20 + 5, 1)
    m = torch.ones_like(z)
    base = float(masked_loss(model, z, m, burn_in=2).detach())
    moved = z.clone()
    moved[:, -2:] += 3.0  # beyond every input and every one-step target
    assert float(masked_loss(model, moved, m, burn_in=2).detach()) > base
    one_step = Forecaster(ForecasterConfig("gru", hidden_size=8, max_features=1, horizon=0))
    assert target_steps(one_step.config) == 1


def test_training_teaches_the_horizon_head_the_value_h_steps_ahead() -> None:
    """A random pattern repeating every 4 steps: the value 4 ahead is the one seen now, the
    next one is not predictable from it. The trained horizon head predicts it, with a scale
    far below the series' spread of 1."""
    rng = np.random.default_rng(1)
    z = np.tile(rng.normal(0, 1, (16, 1, 4)), (1, 1, 25)).reshape(16, 100, 1).astype(np.float32)
    z += rng.normal(0, 0.02, z.shape).astype(np.float32)
    config = ForecasterConfig("gru", hidden_size=8, max_features=1, horizon=4)
    tc = TrainConfig(epochs=25, seq_len=16, burn_in=2, batch_size=16, lr=1e-2, patience=25)
    model, _ = train_forecaster(config, z, np.ones_like(z, dtype=bool), tc)
    zt = torch.from_numpy(z)
    with torch.no_grad():
        heads, _ = model.heads(torch.cat([zt, torch.ones_like(zt)], 2))
    err = (heads.ahead_loc[:, 8:-4] - zt[:, 12:]).abs().mean()
    assert float(err) < 0.25
    assert float(heads.ahead_log_scale[:, 8:].exp().median()) < 0.4
