"""`vigil api` on the command line."""

from __future__ import annotations

import argparse

from pipeline.cli.api import add_commands


def test_cli_registers_the_api_command() -> None:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["api", "--host", "0.0.0.0", "--port", "9000"])
    assert (args.command, args.host, args.port) == ("api", "0.0.0.0", 9000)
    assert callable(args.func)
