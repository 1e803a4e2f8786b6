"""`vigil demo`: the whole path on one machine, with alerts shown live.

It runs on the stack `vigil stack up` recorded, or on one it starts (`demo_session`),
serves the API and dashboard, creates the topics, and streams realistic data — NAB series
(the six shipped with the package, plus any NAB folder added), >= 1,000 per-account
transaction streams and multivariate pump sensors, plus a trickle of broken records —
through a real worker, showing alerts as they are published and ending with a summary and
three next steps. Nothing is trained first: the shipped generic model scores from the
first event and every stream's first `warmup_events` never alert.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections import deque

from kafka import KafkaProducer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from pipeline.contracts.alerts import Alert
from pipeline.local.demo_data import DemoData, DemoDataError, demo_events, nab_sources
from pipeline.local.demo_session import demo_session, next_steps, serve_dashboard
from pipeline.settings import Settings, SettingsError
from pipeline.worker.loop import Worker
from pipeline.worker.wiring import create_topics, open_worker

BROKEN_EVERY = 2000  # one broken record per this many good ones, to show dead letters

DEMO_HISTORY = 300
"""Points per stream the demo keeps for the dashboard (the worker default keeps none)."""


def _broken_record(rng: random.Random, stream: str, ts: int) -> bytes:
    """The kinds of garbage real producers send."""
    choices = [
        b'{"stream": "' + stream.encode() + b'", "ts": ' + str(ts).encode() + b', "value": NaN}',
        b'{"stream": "' + stream.encode() + b'", "value": 3.2}',
        b'{"stream": "' + stream.encode() + b'", "ts": "not a time", "value": 1}',
        b"\x00\x01 binary junk",
        b'{"stream": "' + stream.encode() + b'", "ts": ' + str(ts).encode() + b', "value": 1e308}',
    ]
    return rng.choice(choices)


class _Producer(threading.Thread):
    def __init__(self, settings: Settings, data: DemoData, seed: int) -> None:
        super().__init__(daemon=True, name="demo-producer")
        self.settings, self.data, self.rng = settings, data, random.Random(seed)
        self.sent = 0
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        producer = KafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap().split(","),
            linger_ms=10,
            batch_size=256 * 1024,
            acks=1,
        )
        topic = self.settings.events_topic
        try:
            for i, event in enumerate(self.data.events):
                key = str(event["stream"]).encode()
                producer.send(topic, key=key, value=json.dumps(event).encode())
                self.sent += 1
                if i % BROKEN_EVERY == BROKEN_EVERY - 1:
                    bad = _broken_record(self.rng, str(event["stream"]), int(event["ts"]))
                    producer.send(topic, key=key, value=bad)
                    self.sent += 1
            producer.flush()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            producer.close()
            self.done.set()


def _alert_table(alerts: deque[Alert]) -> Table:
    table = Table(title="latest alerts", expand=True)
    table.add_column("time", no_wrap=True)
    table.add_column("stream", min_width=24, overflow="fold")
    for col in ("score", "value", "expected"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("feature")
    for a in list(alerts)[-14:]:
        f = a.top_feature
        table.add_row(
            a.ts[:16].replace("T", " "),
            a.stream,
            f"{a.score:.2f}",
            f"{a.values.get(f, float('nan')):,.2f}",
            f"{a.expected.get(f, float('nan')):,.2f}",
            f,
        )
    return table


def _status(worker: Worker, producer: _Producer, started: float) -> Panel:
    s = worker.stats
    elapsed = max(time.monotonic() - started, 1e-9)
    dead = sum(s.deadletters.values())
    text = (
        f"produced {producer.sent:,}   processed {s.records:,}   "
        f"alerts {s.alerts:,}   dead letters {dead:,}   {s.records / elapsed:,.0f} events/s"
    )
    return Panel(text, title="vigil demo", border_style="cyan")


def _summary(
    console: Console, worker: Worker, data: DemoData, elapsed: float, alerts: list[Alert]
) -> None:
    s = worker.stats
    table = Table(title="summary", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("events processed", f"{s.records:,}")
    table.add_row("events applied", f"{s.applied:,}")
    table.add_row("streams", f"{worker.store.count():,}")
    table.add_row("alerts", f"{len(alerts):,} firing, {s.alerts - len(alerts):,} resolved")
    dead = ", ".join(f"{k} {v}" for k, v in sorted(s.deadletters.items())) or "none"
    table.add_row("dead letters", f"{sum(s.deadletters.values()):,} ({dead})")
    table.add_row("events/s", f"{s.records / max(elapsed, 1e-9):,.0f}")
    real = [a for a in data.anomalies if not a.benign]
    by_stream: dict[str, list[Alert]] = {}
    for a in alerts:
        by_stream.setdefault(a.stream, []).append(a)
    caught = sum(
        any(x.start_ms <= a.ts_ms <= x.end_ms for a in by_stream.get(x.stream, [])) for x in real
    )
    inside = sum(
        any(x.stream == a.stream and x.start_ms <= a.ts_ms <= x.end_ms for x in data.anomalies)
        for a in alerts
    )
    table.add_row("labelled anomalies caught", f"{caught} of {len(real)}")
    table.add_row("alerts inside a labelled window", f"{inside} of {len(alerts)}")
    table.add_row("model", worker.detector.version)
    console.print(table)


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    console = Console()
    try:
        nab_dirs = nab_sources(args.nab_dir)
        data = demo_events(
            nab_dirs, n_accounts=args.accounts, n_pumps=args.pumps, steps=args.steps,
            seed=args.seed, max_nab_rows=args.nab_rows,
        )  # fmt: skip
    except DemoDataError as exc:
        raise SettingsError(str(exc)) from None
    console.print(
        f"[bold]streams[/] {len(data.nab_streams)} NAB series (from "
        f"{', '.join(str(d) for d in nab_dirs)}), {args.accounts:,} card accounts, "
        f"{args.pumps:,} pumps"
    )
    if "history_length" not in settings.model_fields_set:
        settings = settings.replace(history_length=DEMO_HISTORY)
    with demo_session(settings, console, keep=args.keep) as session:
        s = session.settings
        dashboard = serve_dashboard(s, console)
        try:
            _stream(s, data, args.seed, console)
            next_steps(console, session, dashboard.url)
            dashboard.linger(console, wait=not args.exit)
        finally:
            dashboard.stop()
    return 0


def _stream(s: Settings, data: DemoData, seed: int, console: Console) -> None:
    """Produce the demo data and run a worker on it until every record is processed."""
    create_topics(s)
    recent: deque[Alert] = deque(maxlen=200)
    every: list[Alert] = []

    def on_alert(alert: Alert) -> None:
        if alert.state == "firing":  # an episode's resolve is news on the topic, not here
            recent.append(alert)
            every.append(alert)

    worker = open_worker(s, on_alert=on_alert, client_id="vigil-demo-worker")
    producer = _Producer(s, data, seed)
    started = time.monotonic()
    runner = threading.Thread(target=worker.run, daemon=True, name="demo-worker")
    producer.start()
    runner.start()
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while runner.is_alive():
            live.update(Group(_status(worker, producer, started), _alert_table(recent)))
            if producer.done.is_set() and worker.stats.records >= producer.sent:
                worker.stop()
            if producer.error is not None:
                worker.stop()
            time.sleep(0.25)
        live.update(Group(_status(worker, producer, started), _alert_table(recent)))
    runner.join()
    if producer.error is not None:
        raise SettingsError(f"producing demo data failed: {producer.error}")
    _summary(console, worker, data, time.monotonic() - started, every)
