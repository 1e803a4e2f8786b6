"""`vigil train`, `vigil trainer` and `vigil models list|promote|rollback`.

Registered on `pipeline.cli.main.main`'s subparsers by `add_commands`. Registry and data mistakes
become `pipeline.errors.UserError`, which the CLI prints as one line.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from pipeline.cli.flags import add_settings_flags, settings_from_args


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _user_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the lifecycle's own error types into the CLI's one-line UserError."""

    def wrapped(args: argparse.Namespace) -> int:
        from pipeline.errors import UserError
        from pipeline.models.registry import RegistryError
        from pipeline.models.training_data import TrainingDataError

        try:
            return func(args)
        except (RegistryError, TrainingDataError) as exc:
            raise UserError(str(exc)) from None

    return wrapped


@_user_errors
def cmd_train(args: argparse.Namespace) -> int:
    from pipeline.models.trainer import run_train

    if args.bench:
        from rich.console import Console

        from pipeline.models.trainer import run_bench

        return run_bench(args.bench_events, args.bench_streams, Console())
    return run_train(settings_from_args(args), args)


@_user_errors
def cmd_trainer(args: argparse.Namespace) -> int:
    from pipeline.models.trainer import run_trainer

    return run_trainer(settings_from_args(args), args)


def _registry(args: argparse.Namespace) -> Any:
    from pipeline.models.registry import ModelRegistry
    from pipeline.state.redis import open_store

    settings = settings_from_args(args)
    return ModelRegistry(settings, open_store(settings))


def _loss(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"


@_user_errors
def cmd_models(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Column, Table

    registry = _registry(args)
    console = Console()
    if args.action == "promote":
        if not args.id:
            from pipeline.errors import UserError

            raise UserError("`vigil models promote` needs a version id (see `vigil models list`)")
        registry.promote(args.id)
        console.print(f"{args.id} is live; workers switch within seconds")
        return 0
    if args.action == "rollback":
        console.print(f"rolled back: {registry.rollback()} is live")
        return 0
    live = registry.live_id()
    versions = registry.versions()
    shipped = registry.shipped_id()
    # `models promote` needs the whole id: that column never wraps nor shrinks, the
    # others give way on a narrow terminal.
    longest = max([len(shipped), *(len(v.id) for v in versions)])
    version = Column("version", no_wrap=True, min_width=longest)
    table = Table(version, "status", "created", "held-out", "live then", "events", "device")
    for v in versions:
        table.add_row(
            v.id,
            v.status,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created)),
            _loss(v.metrics.get("held_out_loss")),
            _loss(v.metrics.get("champion_loss")),
            str(v.window.get("events", "-")),
            v.device,
        )
    table.add_row(shipped, "live" if live is None else "shipped", "-", "-", "-", "-", "-")
    console.print(table)
    return 0


def add_commands(sub: Any) -> None:
    """Add the model-lifecycle commands to `vigil`'s subparsers."""

    p = sub.add_parser("train", help="train a model version on recent history")
    add_settings_flags(p)
    p.add_argument(
        "--csv", nargs="+", metavar="PATH", help="CSV files or folders (default: the events topic)"
    )
    p.add_argument("--scratch", action="store_true", help="fresh weights, not the live model's")
    p.add_argument("--promote", choices=["auto", "never", "force"], default="auto",
                   help="auto: only if it beats the live model on held-out data")  # fmt: skip
    p.add_argument("--epochs", type=_positive_int, help="default: setting train_epochs")
    p.add_argument("--seq-len", type=_positive_int, help="training window length (default 64)")
    p.add_argument(
        "--max-records", type=_positive_int, help="newest records to read from the topic"
    )
    p.add_argument("--max-seconds", type=_positive_float, help="time budget for reading the topic")
    p.add_argument("--bench", action="store_true", help="benchmark training on synthetic data")
    p.add_argument("--bench-events", type=_positive_int, default=1_000_000)
    p.add_argument("--bench-streams", type=_positive_int, default=1000)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("trainer", help="retrain on a schedule and on request")
    add_settings_flags(p)
    p.add_argument("--now", action="store_true", help="also run once at start")
    p.set_defaults(func=cmd_trainer)

    p = sub.add_parser("models", help="list, promote or roll back model versions")
    add_settings_flags(p)
    p.add_argument("action", choices=["list", "promote", "rollback"])
    p.add_argument("id", nargs="?", help="version id for promote")
    p.set_defaults(func=cmd_models)
