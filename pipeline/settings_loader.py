"""Build Settings once, in `main`: defaults < TOML file < environment < flags.

Every mistake is a one-line SettingsError.

Kept apart from `pipeline.settings` so the class stays pure data: this module is the
only one that reads the environment or a file to make one.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import tomllib
from pydantic import ValidationError

from pipeline.service_links import service_link_names
from pipeline.settings import ENV_PREFIX, NOT_SETTINGS, Settings, SettingsError

log = logging.getLogger(__name__)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"invalid setting {where}: {message}"


def read_config_file(config: str) -> dict[str, Any]:
    """The settings in a TOML file (top-level keys or a `[vigil]` table); one-line errors."""
    try:
        with open(config, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise SettingsError(f"cannot read config file {config}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {config} is not valid TOML: {exc}") from None
    values: dict[str, Any] = raw.get("vigil", raw)
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise SettingsError(f"unknown setting {unknown[0]!r} in {config}")
    return values


def env_settings() -> set[str]:
    """Names of the settings the environment sets (Kubernetes service links excluded)."""
    links = service_link_names(os.environ, ENV_PREFIX)
    return {
        name
        for name in Settings.model_fields
        if f"{ENV_PREFIX}{name.upper()}" in os.environ.keys() - links
    }


def load_settings(config: str | None = None, **overrides: Any) -> Settings:
    """Build Settings from defaults < TOML file < environment < overrides.

    Raises SettingsError with a one-line message for any user mistake.
    """
    file_values = read_config_file(config) if config else {}
    links = service_link_names(os.environ, ENV_PREFIX)
    if links:
        log.warning(
            "ignoring %d Kubernetes service-link variables (%s); set enableServiceLinks: "
            "false on the pod",
            len(links),
            ", ".join(sorted(links)[:3]) + ", ...",
        )
    env_names = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    unknown_env = sorted(
        k
        for k in os.environ
        if k.startswith(ENV_PREFIX) and k not in env_names | links | NOT_SETTINGS
    )
    if unknown_env:
        raise SettingsError(f"unknown environment variable {unknown_env[0]}")
    try:
        # The environment beats the file: pass file values only where no env var is set.
        from_file = {
            k: v
            for k, v in file_values.items()
            if f"{ENV_PREFIX}{k.upper()}" not in os.environ.keys() - links
        }
        return Settings(**{**from_file, **{k: v for k, v in overrides.items() if v is not None}})
    except ValidationError as exc:
        raise SettingsError(_first_error(exc)) from None
