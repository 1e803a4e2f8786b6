"""Settings that shape the worker's detector reach it."""

from __future__ import annotations

import pytest

from pipeline.models.serving import detector_params
from pipeline.settings_loader import load_settings


def test_alert_policy_and_range_channel_come_from_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert detector_params(load_settings(None)).novelty.enabled
    monkeypatch.setenv("VIGIL_RANGE_CHANNEL", "false")
    params = detector_params(load_settings(None, alert_quiet_seconds=7))
    assert not params.novelty.enabled
    assert params.policy.quiet_seconds == 7
