"""Training the forecaster: the same normalisation as serving, early stopping, clipping.

Training sees exactly what serving sees: sequences are normalised with the detector's own
running statistics (`detectors.detector.normalise` / `update_stats`, step by step, no
look-ahead), so the model learns on the inputs it will get online.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from detectors.detector import DetectorParams
from detectors.forecaster import (
    Forecaster,
    ForecasterConfig,
    ModelKind,
    checkpoint_bytes,
    pick_device,
    shipped_model_path,
)
from detectors.normalisation import normalise, update_stats
from detectors.training.synthetic import generate_corpus


def normalise_sequences(
    values: np.ndarray, mask: np.ndarray, params: DetectorParams | None = None
) -> np.ndarray:
    """[N, T, F] raw values -> [N, T, F] normalised inputs, as the online detector computes."""
    p = params or DetectorParams()
    n, length, f = values.shape
    mean = np.zeros((n, f), dtype=np.float32)
    var = np.ones((n, f), dtype=np.float32)
    count = np.zeros(n, dtype=np.int64)
    out = np.zeros_like(values, dtype=np.float32)
    for t in range(length):
        x, m = values[:, t], mask[:, t]
        out[:, t] = normalise(x, m, mean, var, count, p.clip)
        mean, var = update_stats(x, m, mean, var, count, p.norm_min_alpha)
        count = count + 1
    return out


@dataclass
class TrainConfig:
    epochs: int = 12
    batch_size: int = 64
    # At most this many optimiser steps per run (fewer epochs on a long history): a run's
    # cost stays bounded while a short history still gets enough steps to learn dynamics.
    max_steps: int = 480
    seq_len: int = 64
    burn_in: int = 8  # steps at a window's start whose loss is ignored (hidden still cold)
    lr: float = 3e-3
    clip_norm: float = 1.0
    patience: int = 3
    val_fraction: float = 0.15
    seed: int = 0
    device: str = "auto"


@dataclass
class TrainReport:
    epochs_run: int
    best_val_loss: float
    train_seconds: float
    timesteps: int
    device: str


def target_steps(config: ForecasterConfig) -> int:
    """Steps a training window needs beyond its inputs: 1, or the horizon."""
    return max(1, config.horizon)


def _windows(
    z: np.ndarray, mask: np.ndarray, seq_len: int, tail: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut sequences into windows of seq_len input steps plus `tail` more for the targets
    (consecutive windows share those `tail` steps)."""
    length = z.shape[1]
    w = (length - tail) // seq_len
    if w == 0:
        raise ValueError(
            f"series of {length} steps are shorter than seq_len + {tail} = {seq_len + tail}"
        )
    zs = [z[:, i * seq_len : i * seq_len + seq_len + tail] for i in range(w)]
    ms = [mask[:, i * seq_len : i * seq_len + seq_len + tail] for i in range(w)]
    zt = torch.from_numpy(np.concatenate(zs)).float()
    mt = torch.from_numpy(np.concatenate(ms)).float()
    return zt, mt


def _gaussian_nll(loc: torch.Tensor, log_scale: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-element Gaussian negative log-likelihood, without its constant."""
    return log_scale + 0.5 * ((target - loc) * torch.exp(-log_scale)) ** 2


def masked_loss(model: Forecaster, z: torch.Tensor, m: torch.Tensor, burn_in: int) -> torch.Tensor:
    """Loss over windows [W, seq_len + target_steps, F].

    The next value's location has the robust loss it always had; with a horizon, its
    scale is fitted by Gaussian likelihood around that location (held fixed, so the
    scale head does not move the location), and the value H ahead by Gaussian likelihood
    of location and scale together."""
    horizon = model.config.horizon
    seq = z.shape[1] - target_steps(model.config)
    inputs = torch.cat([z[:, :seq], m[:, :seq]], dim=2)
    heads, _ = model.heads(inputs)
    target, tmask = z[:, 1 : seq + 1], m[:, 1 : seq + 1].clone()
    tmask[:, :burn_in] = 0
    loss = nn.functional.smooth_l1_loss(heads.loc, target, reduction="none", beta=0.5) * tmask
    if horizon > 0:
        loss = loss + _gaussian_nll(heads.loc.detach(), heads.log_scale, target) * tmask
        ahead, amask = z[:, horizon : seq + horizon], m[:, horizon : seq + horizon].clone()
        amask[:, :burn_in] = 0
        loss = loss + _gaussian_nll(heads.ahead_loc, heads.ahead_log_scale, ahead) * amask
    return loss.sum() / tmask.sum().clamp(min=1.0)


@torch.no_grad()
def evaluate_loss(
    model: Forecaster, z: torch.Tensor, m: torch.Tensor, burn_in: int, device: torch.device
) -> float:
    model.eval()
    total, weight = 0.0, 0.0
    tail = target_steps(model.config)
    for i in range(0, len(z), 1024):
        zb, mb = z[i : i + 1024].to(device), m[i : i + 1024].to(device)
        w = float(mb[:, 1 + burn_in : 1 + zb.shape[1] - tail].sum())
        total += float(masked_loss(model, zb, mb, burn_in)) * w
        weight += w
    return total / max(weight, 1.0)


def train_forecaster(
    config: ForecasterConfig,
    z: np.ndarray,
    mask: np.ndarray,
    train: TrainConfig | None = None,
    progress: Callable[[int, float, float], None] | None = None,
    init: Forecaster | None = None,
    frozen: tuple[str, ...] = (),
) -> tuple[Forecaster, TrainReport]:
    """Train on normalised sequences [N, T, F]; returns the best model by validation loss.
    Parameters whose names start with one of `frozen` (e.g. "rnn") are not trained."""
    tc = train or TrainConfig()
    torch.manual_seed(tc.seed)
    device = pick_device(tc.device)
    zt, mt = _windows(z, mask, tc.seq_len, target_steps(config))
    perm = torch.randperm(len(zt), generator=torch.Generator().manual_seed(tc.seed))
    n_val = max(1, int(len(zt) * tc.val_fraction))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    model = copy.deepcopy(init) if init is not None else Forecaster(config)
    model = model.to(device)
    trained = [p for name, p in model.named_parameters() if not name.startswith(frozen)]
    opt = torch.optim.AdamW(trained, lr=tc.lr, weight_decay=1e-5)
    steps_per_epoch = max(1, math.ceil(len(train_idx) / tc.batch_size))
    epochs = max(1, min(tc.epochs, tc.max_steps // steps_per_epoch))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=tc.lr, total_steps=epochs * steps_per_epoch
    )
    use_amp = device.type == "cuda"
    best, best_state, bad_epochs, epochs_run = math.inf, copy.deepcopy(model.state_dict()), 0, 0
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = train_idx[torch.randperm(len(train_idx))]
        for i in range(0, len(order), tc.batch_size):
            idx = order[i : i + tc.batch_size]
            zb, mb = zt[idx].to(device), mt[idx].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = masked_loss(model, zb, mb, tc.burn_in)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), tc.clip_norm)
            opt.step()
            sched.step()
        epochs_run = epoch + 1
        val = evaluate_loss(model, zt[val_idx], mt[val_idx], tc.burn_in, device)
        if progress is not None:
            progress(epoch + 1, float(loss.detach()), val)
        if val < best - 1e-5:
            best, best_state, bad_epochs = val, copy.deepcopy(model.state_dict()), 0
        else:
            bad_epochs += 1
            if bad_epochs >= tc.patience:
                break
    model.load_state_dict(best_state)
    model = model.cpu().eval()
    report = TrainReport(
        epochs_run=epochs_run,
        best_val_loss=best,
        train_seconds=time.perf_counter() - start,
        timesteps=tc.seq_len * len(mt) * epochs_run,
        device=str(device),
    )
    return model, report


def train_generic(
    config: ForecasterConfig,
    n_series: int = 3000,
    length: int = 513,
    train: TrainConfig | None = None,
    progress: Callable[[int, float, float], None] | None = None,
) -> tuple[Forecaster, TrainReport]:
    """The model shipped for fresh installs: trained on synthetic series only.

    With a horizon, in two stages: the next-value model first, exactly as without one,
    then only the horizon head on top of it (the recurrent layer and the next-value head
    frozen), so a fresh install's next-value predictions, and every evidence built on
    them, do not depend on the horizon head; the trainer's runs then train all of it."""
    tc = train or TrainConfig()
    values, mask = generate_corpus(n_series, length, config.max_features, seed=tc.seed)
    z = normalise_sequences(values, mask)
    if config.horizon == 0:
        return train_forecaster(config, z, mask, tc, progress)
    base, _ = train_forecaster(replace(config, horizon=0), z, mask, tc, progress)
    model = Forecaster(config)
    model.load_state_dict(base.state_dict(), strict=False)  # all but the horizon head
    return train_forecaster(config, z, mask, tc, progress, init=model, frozen=("rnn", "head"))


def ship_generic_models(
    out_dir: Path | None = None, kinds: tuple[ModelKind, ...] = ("gru", "lstm")
) -> dict[ModelKind, Path]:
    """Regenerate the shipped generic models, byte for byte, from synthetic data only.

    The files in `detectors/models/` were made by exactly this (on CPU, one torch thread;
    about a minute for both on this 2-core machine):

        .venv/bin/python -m detectors.training.train            # writes detectors/models/*.pt
        .venv/bin/python -m detectors.training.train /tmp/out   # or somewhere else, to compare

    i.e. 2000 synthetic series of 513 steps (`detectors.training.synthetic`, seed 0), windows of
    64 steps (plus the horizon's 18 for the targets), batches of 256, 8 epochs, with the
    default horizon head. The recipe is pinned because the detector's scoring defaults
    were chosen with these weights: a model trained on a different corpus changes the
    error distribution the scoring expects.
    """
    written: dict[ModelKind, Path] = {}
    for kind in kinds:
        config = ForecasterConfig(kind, hidden_size=64, max_features=4)
        recipe = TrainConfig(epochs=8, batch_size=256, max_steps=10_000)
        model, _ = train_generic(config, n_series=2000, length=513, train=recipe)
        target = shipped_model_path(kind, 64)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            target = out_dir / target.name
        target.write_bytes(checkpoint_bytes(model, {"trained_on": "synthetic"}))
        written[kind] = target
    return written


if __name__ == "__main__":
    import sys

    torch.set_num_threads(1)  # the shipped bytes were produced single-threaded
    for kind, path in ship_generic_models(Path(sys.argv[1]) if len(sys.argv) > 1 else None).items():
        print(f"{kind}: {path}")
