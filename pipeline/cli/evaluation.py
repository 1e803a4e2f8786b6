"""`vigil backtest`, `vigil report` and `vigil evaluate`: replaying CSV files through a
detector and scoring the result (pipeline.evaluation).

Registered on `pipeline.cli.main.main`'s subparsers by `add_commands`; the heavy imports
happen inside each command so `vigil --help` stays quick.
"""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.cli.flags import add_settings_flags, settings_from_args
from pipeline.errors import UserError


def _duration(text: str) -> float:
    """An argparse type: ``6h`` -> seconds (a bad value is argparse's one-line error)."""
    from pipeline.evaluation.retrain import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_backtest(args: argparse.Namespace) -> int:
    from pipeline.evaluation.backtest import run_backtest

    return run_backtest(settings_from_args(args), args)


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.evaluation.evaluate import EvaluateError
    from pipeline.evaluation.report import run_report

    try:
        return run_report(settings_from_args(args), args)
    except (EvaluateError, ValueError) as exc:
        raise UserError(str(exc)) from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pipeline.evaluation.command import run_evaluate_command
    from pipeline.evaluation.evaluate import EvaluateError

    settings = settings_from_args(args)
    try:
        return run_evaluate_command(args, settings, Console())
    except (EvaluateError, ValueError) as exc:
        raise UserError(str(exc)) from None


def add_commands(sub: Any) -> None:
    """backtest, report and evaluate: replaying and scoring (pipeline.evaluation)."""
    p = sub.add_parser("backtest", help="replay CSV files through the detector")
    add_settings_flags(p)
    p.add_argument("paths", nargs="+", help="CSV files or folders of CSVs")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", choices=["plain", "nab"], default="plain")
    p.add_argument("--detector", default="vigil", help="vigil, or a River baseline name")
    p.add_argument("--jobs", type=int, default=0, help="parallel processes (0 = cores)")
    p.add_argument("--model", help="replay this registry version (default: the shipped model)")
    p.add_argument(
        "--retrain-every",
        type=_duration,
        metavar="DURATION",
        help="replay the trainer's loop every DURATION of event time (e.g. 6h)",
    )
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("report", help="backtest and score everything; write a markdown report")
    add_settings_flags(p)
    from pipeline.evaluation.report import add_arguments as add_report_arguments

    add_report_arguments(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("evaluate", help="NAB / event-wise scores of backtests, or the suite")
    add_settings_flags(p)
    from pipeline.evaluation.command import add_arguments as add_evaluate_arguments

    add_evaluate_arguments(p)
    p.set_defaults(func=cmd_evaluate)
