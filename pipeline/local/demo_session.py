"""Where `vigil demo` runs and what it leaves behind: the stack, the dashboard, next steps.

The stack, in order of preference: the broker and Redis given in settings; the stack
`vigil stack up` recorded (the demo's data stays there for the next steps); with `--keep`
a new recorded stack (`stack_up`) left running; otherwise a throwaway `LocalStack` that
stops with the demo. On a stack that outlives the demo, every run gets its own topics,
consumer group and Redis prefix (`vigil-demo-<time>`), because a second run replays the
same timestamps, which the first run's stream states would refuse as out of order.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console

from pipeline.api.server import bind, serve_in_background
from pipeline.local.stack import LocalStack, StackError, StackInfo, stack_status, stack_up
from pipeline.settings import Settings, SettingsError


@dataclass(frozen=True)
class DemoSession:
    settings: Settings
    persistent: bool  # the stack outlives the demo (recorded by `vigil stack up`, or given)


def _run_scoped(settings: Settings) -> Settings:
    run = f"vigil-demo-{time.strftime('%Y%m%d-%H%M%S')}"
    return settings.replace(
        events_topic=f"{run}.events", alerts_topic=f"{run}.alerts",
        deadletter_topic=f"{run}.deadletter", group_id=run, redis_prefix=run,
    )  # fmt: skip


@contextlib.contextmanager
def demo_session(settings: Settings, console: Console, *, keep: bool) -> Iterator[DemoSession]:
    """The settings the demo runs with, on the stack chosen as the module docstring says."""
    if settings.bootstrap_servers and settings.redis_url.get_secret_value():
        console.print("[bold]stack[/] the broker and Redis in your settings")
        yield DemoSession(_run_scoped(settings), persistent=True)
        return
    try:
        recorded = stack_status()
        if recorded is not None and recorded.is_running():
            console.print(f"[bold]stack[/] the one `vigil stack up` recorded: broker "
                          f"{recorded.bootstrap_servers}, redis {recorded.redis_url}")  # fmt: skip
            yield DemoSession(_run_scoped(_on(settings, recorded)), persistent=True)
            return
        if keep:
            info = stack_up()
            console.print(f"[bold]stack[/] started and kept running: broker "
                          f"{info.bootstrap_servers}, redis {info.redis_url} "
                          "(`vigil stack down` stops it)")  # fmt: skip
            yield DemoSession(_on(settings, info), persistent=True)
            return
        stack = LocalStack()
        info = stack.start()
    except StackError as exc:
        raise SettingsError(f"cannot start the local stack: {exc}") from None
    console.print(f"[bold]stack[/] broker {info.bootstrap_servers}, redis {info.redis_url} "
                  "(stops with the demo; `--keep` keeps it)")  # fmt: skip
    try:
        yield DemoSession(_on(settings, info), persistent=False)
    finally:
        stack.stop()


def _on(settings: Settings, info: StackInfo) -> Settings:
    return settings.replace(bootstrap_servers=info.bootstrap_servers, redis_url=info.redis_url)


class Dashboard:
    """The API and dashboard served from a background thread while the demo runs."""

    def __init__(self, settings: Settings, console: Console) -> None:
        try:
            sock = bind(settings.api_host, settings.api_port)
        except SettingsError:
            sock = bind(settings.api_host, 0)  # api_port is taken (another `vigil api`?)
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}/"
        self.server = serve_in_background(settings, sock)
        console.print(f"[bold]dashboard[/] {self.url}")

    def linger(self, console: Console, *, wait: bool) -> None:
        """Keep serving until Ctrl-C when a person is watching; scripts get their exit."""
        if not wait or not sys.stdin.isatty():
            return
        console.print(f"serving the dashboard at {self.url}; Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()

    def stop(self) -> None:
        self.server.should_exit = True


def serve_dashboard(settings: Settings, console: Console) -> Dashboard:
    return Dashboard(settings, console)


def next_steps(console: Console, session: DemoSession, dashboard_url: str) -> None:
    """Three things to do next, with the addresses of this very stack."""
    s = session.settings
    broker = s.kafka_bootstrap()
    console.print("\n[bold]next steps[/]")
    console.print(
        f"  1. produce your own events: JSON on topic vigil.events at {broker}, key = stream "
        'id, e.g. {"stream": "my-sensor", "ts": "2026-12-01T10:00:00Z", "value": 3.2}, '
        "then run `vigil worker`"
    )
    console.print(
        "  2. point a worker at your own topic, in its own field names:\n"
        "     VIGIL_EVENT_FEATURES=amount VIGIL_EVENT_TS_FIELD=event_time "
        "VIGIL_EVENT_STREAM_FIELD=account_id vigil worker --topic payments --group vigil-payments"
    )
    console.print(f"  3. open the dashboard: {dashboard_url} (later: `vigil api`)")
    if not session.persistent:
        console.print(
            "  this demo's stack stops when it exits: `vigil stack up` (or `vigil demo --keep`) "
            "keeps one for these steps"
        )
