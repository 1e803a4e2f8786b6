"""The recurrent forecaster (GRU or LSTM) and its checkpoint format.

One model serves every stream: it sees a stream's *normalised* values (plus a mask of which
feature slots the stream uses) and predicts the next normalised value of each slot. The
per-stream part (hidden state, normalisation) lives in the stream's state, not here, so a
single batched step advances thousands of streams at once.

With a ``horizon`` H > 0 it also predicts, directly (not by feeding its own predictions
back), the value H events ahead, as a location and a scale, and a scale for the next
value. Why: on a smooth signal a one-step prediction is as good by local extrapolation as
by knowing the dynamics, so a model that only extrapolates reaches the noise floor one
step ahead and never notices that a stream's continuation is wrong (a cut-and-stitched
chaotic signal); H steps ahead, only a model that uses the stream's longer history is
right, and it is wrong after such a cut. The scale makes the error scale-free: the
surprise of a value is |z - location| / scale.

A checkpoint is a plain dict of the config and the weights, saved with `torch.save` and
loaded with `weights_only=True`, so training and serving rebuild exactly the same module
and loading never unpickles code.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Generic, Literal, NamedTuple, TypeVar

import torch
from torch import nn

ModelKind = Literal["gru", "lstm"]


@dataclass(frozen=True)
class ForecasterConfig:
    kind: ModelKind = "gru"
    hidden_size: int = 64
    max_features: int = 4
    horizon: int = 18  # events ahead of the direct prediction (0 = one-step head only)

    @property
    def state_size(self) -> int:
        """Floats of recurrent state per stream: h for a GRU, h and c for an LSTM."""
        return self.hidden_size * (2 if self.kind == "lstm" else 1)

    @property
    def record_shape(self) -> tuple[int, int, int]:
        """What fixes a stream's state record: a model swap needs the same shape."""
        return (self.state_size, self.max_features, self.horizon)


#: Log-scales are kept in this range (normalised units: 0.001 to 20).
LOG_SCALE_MIN, LOG_SCALE_MAX = -7.0, 3.0


Array = TypeVar("Array")


class Heads(NamedTuple, Generic[Array]):
    """Every head's output per step, each [B, T, F] (tensors, or arrays when serving); the
    scales as natural logs."""

    loc: Array  # the next value
    log_scale: Array  # its scale
    ahead_loc: Array  # the value `horizon` events ahead
    ahead_log_scale: Array  # its scale


class Forecaster(nn.Module):
    """Input per step: [z (max_features), mask (max_features)] -> next z per slot, and with
    a horizon the scale of that and the location and scale H events ahead (`Heads`)."""

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        self.config = config
        n_in = 2 * config.max_features
        self.rnn: nn.GRU | nn.LSTM
        if config.kind == "gru":
            self.rnn = nn.GRU(n_in, config.hidden_size, batch_first=True)
        elif config.kind == "lstm":
            self.rnn = nn.LSTM(n_in, config.hidden_size, batch_first=True)
        else:
            raise ValueError(f"unknown model kind {config.kind!r}")
        self.head = nn.Linear(config.hidden_size, config.max_features)
        # Absent without a horizon, so checkpoints made before it load unchanged.
        self.ahead = (
            nn.Linear(config.hidden_size, 3 * config.max_features) if config.horizon > 0 else None
        )

    def _split(self, state: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        h = state[:, : self.config.hidden_size].unsqueeze(0).contiguous()
        if self.config.kind == "lstm":
            c = state[:, self.config.hidden_size :].unsqueeze(0).contiguous()
            return (h, c)
        return h

    def _join(self, hidden: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        if isinstance(hidden, tuple):
            return torch.cat([hidden[0][0], hidden[1][0]], dim=1)
        return hidden[0]

    def heads(
        self, inputs: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[Heads[torch.Tensor], torch.Tensor]:
        """inputs [B, T, 2F], state [B, state_size] -> (every head [B, T, F], new state).

        Without a horizon the scales are 0 (a scale of 1) and the ahead location is the
        next value's."""
        if state is None:
            state = inputs.new_zeros(inputs.shape[0], self.config.state_size)
        out, hidden = self.rnn(inputs, self._split(state))
        loc = self.head(out)
        if self.ahead is None:
            zero = torch.zeros_like(loc)
            return Heads(loc, zero, loc, zero), self._join(hidden)
        log_scale, ahead_loc, ahead_log_scale = self.ahead(out).chunk(3, dim=-1)
        clamp = (LOG_SCALE_MIN, LOG_SCALE_MAX)
        return (
            Heads(loc, log_scale.clamp(*clamp), ahead_loc, ahead_log_scale.clamp(*clamp)),
            self._join(hidden),
        )

    def forward(
        self, inputs: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, T, 2F], state [B, state_size] -> (next-value predictions [B, T, F],
        new state)."""
        heads, new_state = self.heads(inputs, state)
        return heads.loc, new_state

    @torch.no_grad()
    def step(
        self, inputs: torch.Tensor, state: torch.Tensor
    ) -> tuple[Heads[torch.Tensor], torch.Tensor]:
        """One step for a batch of streams: inputs [B, 2F], state [B, S] -> (every head
        [B, F], new state [B, S])."""
        heads, new_state = self.heads(inputs.unsqueeze(1), state)
        return Heads(*(h[:, 0] for h in heads)), new_state


def pick_device(preference: str = "auto") -> torch.device:
    """cuda when asked for or available, cpu otherwise."""
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


@dataclass(frozen=True)
class LoadedModel:
    """A forecaster ready for serving, with the identity stored in every stream state."""

    model: Forecaster
    version: str
    sha256: str

    @property
    def config(self) -> ForecasterConfig:
        return self.model.config

    @property
    def tag(self) -> int:
        """32-bit tag of the version: what a stream state records as its model."""
        return model_tag(self.version)


def model_tag(version: str) -> int:
    return zlib.crc32(version.encode()) & 0xFFFFFFFF


def checkpoint_bytes(model: Forecaster, extra: dict[str, object] | None = None) -> bytes:
    payload = {
        "config": asdict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def load_checkpoint(data: bytes, version: str | None = None) -> LoadedModel:
    """Rebuild a forecaster from checkpoint bytes (never unpickles code)."""
    digest = hashlib.sha256(data).hexdigest()
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    config = ForecasterConfig(**{"horizon": 0, **payload["config"]})  # older: no horizon
    model = Forecaster(config)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return LoadedModel(model=model, version=version or digest[:12], sha256=digest)


SHIPPED_DIR = Path(__file__).parent / "models"


def shipped_model_path(kind: ModelKind, hidden_size: int) -> Path:
    return SHIPPED_DIR / f"generic-{kind}-h{hidden_size}.pt"
