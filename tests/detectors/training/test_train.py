"""Training on the synthetic corpus yields a checkpoint that serving can load and step."""

from __future__ import annotations

import numpy as np
import torch

from detectors.forecaster import ForecasterConfig, checkpoint_bytes, load_checkpoint
from detectors.training.synthetic import generate_corpus
from detectors.training.train import TrainConfig, normalise_sequences, train_generic


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
    pred, state = loaded.model.step(torch.zeros(3, 4), torch.zeros(3, config.state_size))
    assert pred.shape == (3, 2) and state.shape == (3, 8)


def test_synthetic_corpus_is_seeded_and_normalises_to_finite_inputs() -> None:
    values, mask = generate_corpus(8, 40, 2, seed=3)
    again, _ = generate_corpus(8, 40, 2, seed=3)
    assert np.array_equal(values, again)
    assert mask[:, :, 0].all()
    z = normalise_sequences(values, mask)
    assert np.isfinite(z).all() and np.abs(z).max() <= 10.0
    assert (z[~mask] == 0).all()
