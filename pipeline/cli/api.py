"""`vigil api`: the command that serves `pipeline.api` (registered by `pipeline.cli.main`)."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.cli.flags import add_settings_flags, settings_from_args


def _cmd_api(args: argparse.Namespace) -> int:
    from pipeline.api.server import run_api

    return run_api(settings_from_args(args, api_host=args.host, api_port=args.port))


def add_commands(subparsers: Any) -> None:
    """Register `vigil api` on the CLI's subparsers."""
    p = subparsers.add_parser("api", help="HTTP API, /metrics and the dashboard")
    add_settings_flags(p)
    p.add_argument("--host", help="address to bind (default: api_host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: api_port, 8000)")
    p.set_defaults(func=_cmd_api)
