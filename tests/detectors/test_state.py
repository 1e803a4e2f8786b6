"""The per-stream record: bytes in, the same bytes out, and clear errors for foreign bytes."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.state import HEADER_BYTES, LAYOUT_VERSION, MAGIC, StateFormatError, StateLayout


def random_states(layout: StateLayout, n: int, seed: int = 0) -> np.ndarray:
    """States whose every byte is random (except the magic), so no field can hide."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=n * layout.record_bytes, dtype=np.uint8).tobytes()
    states = np.frombuffer(raw, dtype=layout.dtype).copy()
    states["magic"] = MAGIC
    return states


@pytest.mark.parametrize("state_size", [64, 128])
def test_encode_decode_round_trips_bit_exactly(state_size: int) -> None:
    layout = StateLayout(state_size=state_size, max_features=4)
    states = random_states(layout, 50)
    blobs = layout.encode(states)
    assert all(len(b) == layout.record_bytes for b in blobs)
    decoded, known = layout.decode(blobs)
    assert known.all()
    assert decoded.tobytes() == states.tobytes()
    assert layout.encode(decoded) == blobs


def test_unknown_streams_decode_as_fresh_states() -> None:
    layout = StateLayout(state_size=64, max_features=4)
    states = random_states(layout, 2)
    blobs = layout.encode(states)
    decoded, known = layout.decode([blobs[0], None, blobs[1]])
    assert known.tolist() == [True, False, True]
    assert decoded[1].tobytes() == layout.fresh(1)[0].tobytes()
    assert decoded[2].tobytes() == states[1].tobytes()


def test_header_is_the_fixed_16_bytes_and_record_stays_small() -> None:
    layout = StateLayout(state_size=64, max_features=4)
    fields = layout.dtype.fields
    assert fields is not None
    assert [fields[k][1] for k in ("magic", "layout", "partition", "offset")] == [0, 2, 4, 8]
    assert fields["model_tag"][1] == HEADER_BYTES
    assert layout.record_bytes <= 900
    # An LSTM record (hidden + cell state) stays under 1 KiB too.
    assert StateLayout(state_size=128, max_features=4).record_bytes < 1024
    # Layout 5 carries the episode policy's fields; older records are refused by size.
    assert layout.fresh(1)["layout"][0] == LAYOUT_VERSION == 7
    assert layout.dtype["range_low"].shape == layout.dtype["range_high"].shape == (4,)
    assert layout.record_bytes <= 1024  # a univariate GRU stream's Redis budget
    assert layout.dtype["season"].shape == (24, 4)
    # The shipped GRU's horizon (18 events) adds its prediction ring and its summary.
    with_horizon = StateLayout(state_size=64, max_features=4, horizon=18)
    assert with_horizon.dtype["ahead"].shape == with_horizon.dtype["ahead_scale"].shape == (18, 4)
    assert with_horizon.record_bytes == layout.record_bytes + 236 <= 1024


def test_wrong_size_or_magic_is_refused() -> None:
    layout = StateLayout(state_size=64, max_features=4)
    blob = layout.encode(layout.fresh(1))[0]
    with pytest.raises(StateFormatError, match="bytes"):
        layout.decode([blob[:-1]])
    with pytest.raises(StateFormatError, match="magic"):
        layout.decode([b"XX" + blob[2:]])
