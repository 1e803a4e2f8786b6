"""Loading stored states: unreadable ones start afresh, with one log line per batch."""

from __future__ import annotations

import logging

import pytest

from pipeline.models.serving import build_detector
from pipeline.settings_loader import load_settings
from pipeline.worker.batch import decode_loaded

LAYOUT = build_detector(load_settings(None)).layout


def test_unreadable_states_start_afresh_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As after an upgrade that changed the state layout: every old record is unreadable."""
    good = LAYOUT.encode(LAYOUT.fresh(1))[0]
    old_layout = b"VG" + bytes(LAYOUT.record_bytes - 30)
    blobs = [good, old_layout, None, old_layout, old_layout]
    with caplog.at_level(logging.ERROR, logger="pipeline.worker.batch"):
        states, known, unreadable = decode_loaded(LAYOUT, ["a", "b", "c", "d", "e"], blobs)
    assert unreadable == 3
    assert known.tolist() == [True, False, False, False, False]
    assert (states["count"] == 0).all() and (states["offset"][1:] == -1).all()
    [line] = caplog.messages
    assert line.startswith("3 unreadable stored states started afresh (first: stream 'b'")
