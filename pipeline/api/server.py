"""Serve the app with uvicorn, refusing an open address without a token (`vigil api`)."""

from __future__ import annotations

import ipaddress

import uvicorn

from pipeline.settings import Settings, SettingsError


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 / ::1; any other name or address is open."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name could resolve anywhere


def check_exposure(settings: Settings, host: str) -> None:
    if not is_loopback(host) and not settings.api_token.get_secret_value():
        raise SettingsError(
            f"refusing to serve the API on {host} without a token: set VIGIL_API_TOKEN "
            "or bind to 127.0.0.1"
        )


def run_api(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    """Serve until interrupted; returns the exit status. Raises SettingsError (one line)
    for an open host without a token or a missing Redis address."""
    from pipeline.api.app import create_app

    bind_host = host or settings.api_host
    bind_port = port or settings.api_port
    check_exposure(settings, bind_host)
    app = create_app(settings)
    config = uvicorn.Config(
        app, host=bind_host, port=bind_port, log_level="info", proxy_headers=False
    )
    uvicorn.Server(config).run()
    return 0
