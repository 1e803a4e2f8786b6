"""`vigil streams reset ID`: start a stuck stream afresh (`pipeline.state.reset`)."""

from __future__ import annotations

import argparse
import getpass
import logging
import socket
from typing import Any

from pipeline.cli.flags import add_settings_flags, settings_from_args
from pipeline.errors import UserError
from pipeline.state.base import validate_stream
from pipeline.state.redis import connect_redis
from pipeline.state.reset import reset_stream


def _cmd_reset(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    try:
        validate_stream(args.stream)
    except ValueError as exc:
        raise UserError(f"invalid stream id: {exc}") from None
    # The audit line must reach the log whatever the verbosity.
    logging.getLogger("vigil.audit").setLevel(logging.WARNING)
    client = connect_redis(settings.redis_address())
    try:
        actor = f"cli:{getpass.getuser()}@{socket.gethostname()}"
        outcome = reset_stream(client, settings.redis_prefix, args.stream, actor)
    finally:
        client.close()
    if outcome is None:
        raise UserError(
            f"no state stored for stream {args.stream!r} (prefix {settings.redis_prefix})"
        )
    print(
        f"stream {args.stream!r} reset: its next event starts it afresh (state and feature "
        f"set); events up to partition {outcome.partition} offset {outcome.offset} stay applied"
    )
    return 0


def add_commands(subparsers: Any) -> None:
    """Register `vigil streams` on the CLI's subparsers (pipeline.cli.main calls this)."""
    p = subparsers.add_parser("streams", help="operate on streams (reset)")
    actions = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    reset = actions.add_parser(
        "reset",
        help="forget a stream's state and feature set (e.g. after an event far in the future)",
        description="Forget a stream's learnt state and feature set; its next event starts "
        "it afresh. Audited in the log. Example: vigil streams reset acct-42",
    )
    reset.add_argument("stream", help="the stream id (the Kafka record key)")
    add_settings_flags(reset)
    reset.set_defaults(func=_cmd_reset)
