"""The settings loader: sources in order, one-line errors, Kubernetes service links."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pipeline.settings import SettingsError
from pipeline.settings_loader import load_settings
from tests.deploy.manifests import OLD_API_SERVICE, service, service_link_env


def _set(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_service_links_are_ignored_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _set(monkeypatch, service_link_env(OLD_API_SERVICE, "10.96.3.4"))
    _set(monkeypatch, service_link_env(service("vigil-redis", ("", 6379, "TCP")), "fd00::7"))
    monkeypatch.setenv("VIGIL_REDIS_PREFIX", "team-a")
    with caplog.at_level(logging.WARNING, logger="pipeline.settings"):
        settings = load_settings()
    assert settings.api_port == 8000  # not "tcp://10.96.3.4:80"
    assert settings.redis_prefix == "team-a"  # real settings beside the links still apply
    assert "enableServiceLinks: false" in caplog.text


def test_a_setting_with_a_link_name_but_not_its_value_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _set(monkeypatch, service_link_env(OLD_API_SERVICE, "10.96.3.4"))
    monkeypatch.setenv("VIGIL_API_PORT", "9000")
    assert load_settings().api_port == 9000


def test_a_link_does_not_hide_the_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "vigil.toml"
    config.write_text("api_port = 9001\n")
    _set(monkeypatch, service_link_env(OLD_API_SERVICE, "10.96.3.4"))
    assert load_settings(str(config)).api_port == 9001


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VIGIL_API_PROT": "8000"}, "unknown environment variable VIGIL_API_PROT"),
        ({"VIGIL_API_PORT": "tcp://10.96.3.4:80"}, "invalid setting api_port"),
        (
            {"VIGIL_API_SERVICE_HOST": "api.local", "VIGIL_API_PORT": "tcp://api.local:80"},
            "unknown environment variable VIGIL_API_SERVICE_HOST",
        ),
        (
            {"VIGIL_API_SERVICE_HOST": "10.96.3.4", "VIGIL_API_SERVICE_PORT": "eighty"},
            "unknown environment variable VIGIL_API_SERVICE_PORT",
        ),
    ],
)
def test_typos_are_still_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    _set(monkeypatch, env)
    with pytest.raises(SettingsError, match=message):
        load_settings()


def test_worker_http_port_is_off_by_default_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().worker_http_port == 0
    monkeypatch.setenv("VIGIL_WORKER_HTTP_PORT", "70000")
    with pytest.raises(SettingsError, match="worker_http_port"):
        load_settings()
