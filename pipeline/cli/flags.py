"""The settings flags every command takes, declared once, and the Settings they build.

`Settings` is pure data; the one piece of file I/O around it lives here: when no broker
or Redis is configured, the addresses `vigil stack up` recorded (`settings.stack_file()`)
fill them in, so commands find the local stack by default. Commands that start their
own embedded stack when none is configured (demo, bench) ask for no such fallback.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipeline.settings import Settings, stack_file
from pipeline.settings_loader import load_settings


def add_settings_flags(p: argparse.ArgumentParser) -> None:
    """``--config``, ``--bootstrap-servers`` and ``--redis-url``: what every command reads."""
    p.add_argument("--config", help="TOML file with settings (env VIGIL_* overrides it)")
    p.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (host:port,...)")
    p.add_argument("--redis-url", help="Redis URL (redis://host:port/db)")


def settings_from_args(
    args: argparse.Namespace, *, recorded_stack: bool = True, **overrides: Any
) -> Settings:
    """Settings from the flags of `add_settings_flags` (plus ``overrides``; None = unset).

    With ``recorded_stack``, an empty broker or Redis address is taken from the local
    stack's record, when there is one. Raises SettingsError (one line).
    """
    settings = load_settings(
        args.config,
        bootstrap_servers=args.bootstrap_servers,
        redis_url=args.redis_url,
        **overrides,
    )
    return with_recorded_stack(settings) if recorded_stack else settings


def _recorded_stack() -> dict[str, Any]:
    """Addresses written by `vigil stack up`; empty when there is no readable record."""
    try:
        data = json.loads(stack_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def with_recorded_stack(settings: Settings) -> Settings:
    """``settings`` with an empty broker or Redis address filled from the stack's record."""
    if settings.bootstrap_servers and settings.redis_url.get_secret_value():
        return settings
    recorded = _recorded_stack()
    changes = {
        name: recorded[name]
        for name, current in (
            ("bootstrap_servers", settings.bootstrap_servers),
            ("redis_url", settings.redis_url.get_secret_value()),
        )
        if not current and isinstance(recorded.get(name), str) and recorded[name]
    }
    return settings.replace(**changes) if changes else settings
