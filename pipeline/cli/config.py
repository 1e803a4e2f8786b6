"""`vigil config`: the effective settings, and where each value came from.

Sources, highest priority first: `flag` (a command-line option), `env` (a VIGIL_*
variable), `file` (the `--config` TOML file), `stack` (the addresses `vigil stack up`
recorded, used when no broker or Redis is configured), `default`. Secrets are shown as
`********` when set: the output is safe to paste into an issue.
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import SecretStr

from pipeline.cli.flags import with_recorded_stack
from pipeline.settings import Settings
from pipeline.settings_loader import env_settings, load_settings, read_config_file

MASK = "********"


def _shown(value: Any) -> str:
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else '""'
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list):
        return ",".join(value) if value else "[]"
    return str(value)


def effective_settings(config: str | None, flags: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, value as shown, source) for every setting, in declaration order."""
    given = {k: v for k, v in flags.items() if v is not None}
    configured = load_settings(config, **given)
    settings = with_recorded_stack(configured)
    from_file = set(read_config_file(config)) if config else set()
    from_env = env_settings()
    rows = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value != getattr(configured, name):
            # The local stack's addresses carry no password: showing them is safe.
            rows.append((name, _shown(_plain(value)), "stack"))
            continue
        source = (
            "flag" if name in given
            else "env" if name in from_env
            else "file" if name in from_file
            else "default"
        )  # fmt: skip
        rows.append((name, _shown(value), source))
    return rows


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def cmd_config(args: argparse.Namespace) -> int:
    rows = effective_settings(
        args.config, {"bootstrap_servers": args.bootstrap_servers, "redis_url": args.redis_url}
    )
    width = max(len(name) for name, _, _ in rows)
    value_width = min(max(len(value) for _, value, _ in rows), 60)
    for name, value, source in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {source}")
    return 0
