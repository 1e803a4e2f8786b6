"""Training runs: `vigil train` once, `vigil trainer` on a schedule, one run at a time.

A run reads recent history, trains a challenger (fine-tuned from the live model, or from
scratch), measures it and the live champion on the same held-out recent data, registers
it, and promotes it only if it wins (champion/challenger), unless told otherwise.

`vigil trainer` replicas share a Redis lock (`pipeline.models.lock`), renewed while a run
lasts. A replica that loses the lock mid-run (paused past the TTL) discards its result
instead of registering it, so two results never race to promotion.
"""

from __future__ import annotations

import argparse
import logging
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any, Literal

import redis
import torch

from detectors.forecaster import ForecasterConfig, pick_device
from detectors.training.train import (
    TrainConfig,
    TrainReport,
    evaluate_loss,
    target_steps,
    train_forecaster,
)
from pipeline.models.lock import LockLost, Renewer, TrainerLock
from pipeline.models.registry import ModelRegistry, ModelVersion
from pipeline.models.training_data import (
    History,
    TrainingDataError,
    TrainingSet,
    build_training_set,
)
from pipeline.settings import Settings, SettingsError
from pipeline.state.base import meta_key, metrics_key

log = logging.getLogger(__name__)

PromoteMode = Literal["auto", "never", "force"]
Progress = Callable[[int, float, float], None]


@dataclass
class TrainOptions:
    scratch: bool = False
    promote: PromoteMode = "auto"
    held_out_fraction: float = 0.2
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class TrainOutcome:
    version: ModelVersion
    champion: str
    champion_loss: float | None
    challenger_loss: float
    promoted: bool
    reason: str
    report: TrainReport


def _held_loss(model: Any, data: TrainingSet, burn_in: int, device: torch.device) -> float:
    z = torch.from_numpy(data.z_held).float()
    m = torch.from_numpy(data.mask_held).float()
    loss = evaluate_loss(model.to(device), z, m, burn_in, device)
    model.cpu()
    return loss


def train_version(
    settings: Settings,
    registry: ModelRegistry,
    history: History,
    options: TrainOptions,
    progress: Progress | None = None,
    still_owner: Callable[[], bool] | None = None,
) -> TrainOutcome:
    """Train, compare with the live model on held-out recent data, register, maybe promote."""
    champion = registry.live_model()
    if options.scratch:
        config = ForecasterConfig(settings.model_kind, settings.hidden_size, settings.max_features)
    else:
        config = champion.config
    tc = replace(options.train, device=settings.device)
    data = build_training_set(
        history,
        config.max_features,
        tc.seq_len,
        options.held_out_fraction,
        tail=target_steps(config),
    )
    if len(data.z_train) < 2:
        raise TrainingDataError("too little history: need at least two training windows")
    init = None if options.scratch else champion.model
    model, report = train_forecaster(config, data.z_train, data.mask_train, tc, progress, init=init)
    device = pick_device(tc.device)
    challenger_loss = _held_loss(model, data, tc.burn_in, device)
    comparable = champion.config.max_features == config.max_features
    champion_loss = _held_loss(champion.model, data, tc.burn_in, device) if comparable else None

    if options.promote == "force":
        promote, reason = True, "forced"
    elif options.promote == "never":
        promote, reason = False, "not asked to promote"
    elif champion_loss is None:
        promote, reason = False, "the live model uses other feature slots; promote by hand"
    elif challenger_loss < champion_loss:
        promote, reason = True, "beats the live model on held-out data"
    else:
        promote, reason = False, "does not beat the live model on held-out data"

    if still_owner is not None and not still_owner():
        raise LockLost("lost the trainer lock during training; result discarded")
    metrics = {
        "held_out_loss": challenger_loss,
        "champion_loss": champion_loss,
        "champion": champion.version,
        "train_val_loss": report.best_val_loss,
        "epochs": report.epochs_run,
        "train_seconds": round(report.train_seconds, 3),
        "timesteps": report.timesteps,
        "train_windows": len(data.z_train),
        "held_out_windows": len(data.z_held),
        "seq_len": tc.seq_len,
        "scratch": options.scratch,
    }
    version = registry.register(
        model,
        window=history.window(),
        metrics=metrics,
        device=report.device,
        parent=None if options.scratch else champion.version,
        status="candidate" if promote or options.promote == "never" else "rejected",
    )
    if promote:
        registry.promote(version.id)
    return TrainOutcome(
        version, champion.version, champion_loss, challenger_loss, promote, reason, report
    )


# --- `vigil train` ----------------------------------------------------------------------
def options_from_args(settings: Settings, args: argparse.Namespace) -> TrainOptions:
    tc = TrainConfig(epochs=args.epochs or settings.train_epochs, device=settings.device)
    if getattr(args, "seq_len", None):
        tc.seq_len = args.seq_len
        tc.burn_in = min(tc.burn_in, max(0, args.seq_len // 4))
    return TrainOptions(scratch=bool(args.scratch), promote=args.promote, train=tc)


def load_history(settings: Settings, args: argparse.Namespace) -> History:
    from pipeline.models.training_data import read_csv, read_topic

    if args.csv:
        return read_csv(args.csv, settings.max_features)
    return read_topic(settings, max_records=args.max_records, max_seconds=args.max_seconds)


def run_train(settings: Settings, args: argparse.Namespace) -> int:
    """`vigil train`: one training run with a progress bar and the champion comparison."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    from pipeline.state.redis import open_store

    console = Console()
    torch.set_num_threads(max(1, settings.torch_threads))
    registry = ModelRegistry(settings, open_store(settings))
    options = options_from_args(settings, args)
    with console.status("reading history…"):
        history = load_history(settings, args)
    console.print(
        f"history: {history.events} events in {len(history.streams)} streams "
        f"from {history.source} ({history.rejected} skipped)"
    )
    device = pick_device(settings.device)
    columns = (
        TextColumn("training on {task.fields[device]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("val {task.fields[val]}"),
        TimeElapsedColumn(),
    )
    with RichProgress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("train", total=options.train.epochs, device=device, val="-")

        def progress(epoch: int, _loss: float, val: float) -> None:
            bar.update(task, completed=epoch, val=f"{val:.4f}")

        outcome = train_version(settings, registry, history, options, progress)
    champ = "n/a" if outcome.champion_loss is None else f"{outcome.champion_loss:.4f}"
    console.print(
        f"held-out loss: new {outcome.challenger_loss:.4f} vs live {champ} ({outcome.champion})"
    )
    console.print(f"registered {outcome.version.id} ({outcome.report.epochs_run} epochs, "
                  f"{outcome.report.train_seconds:.1f}s on {outcome.report.device})")  # fmt: skip
    verdict = "promoted: workers switch within seconds" if outcome.promoted else "not promoted"
    console.print(f"{verdict} — {outcome.reason}")
    return 0


# --- training benchmark -----------------------------------------------------------------
def bench_training(
    n_events: int = 1_000_000,
    n_streams: int = 1000,
    epochs: int = 3,
    seq_len: int = 64,
    hidden_size: int = 64,
    seed: int = 0,
    threads: int = 1,
) -> dict[str, float]:
    """Time and peak memory of building sequences and training on n_events (CPU here).

    One intra-op thread by default: on 2 cores, two torch threads train ~4x slower.
    """
    torch.set_num_threads(threads)
    from detectors.training.synthetic import generate_corpus
    from pipeline.models.training_data import StreamSeries

    length = max(seq_len * 2 + 1, n_events // n_streams)
    values, mask = generate_corpus(n_streams, length, 1, seed=seed)
    streams = {
        f"bench-{i:06d}": StreamSeries(
            ("value",), list(range(length)), [(float(v),) for v in values[i, :, 0]]
        )
        for i in range(n_streams)
    }
    del values, mask
    history = History(streams, "bench", records=n_streams * length)
    config = ForecasterConfig("gru", hidden_size, 4)
    start = time.perf_counter()
    data = build_training_set(history, 4, seq_len, tail=target_steps(config))
    prepared = time.perf_counter() - start
    tc = TrainConfig(epochs=epochs, seq_len=seq_len, patience=epochs + 1, seed=seed)
    _, report = train_forecaster(config, data.z_train, data.mask_train, tc)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "events": float(n_streams * length),
        "prepare_seconds": prepared,
        "train_seconds": report.train_seconds,
        "epochs": float(report.epochs_run),
        "timesteps_per_second": report.timesteps / max(report.train_seconds, 1e-9),
        "peak_rss_mib": peak_kib / 1024.0,
        "train_windows": float(len(data.z_train)),
    }


def run_bench(n_events: int, n_streams: int, console: Any) -> int:
    figures = bench_training(n_events, n_streams)
    for name, value in figures.items():
        console.print(f"{name:>22}  {value:,.2f}")
    return 0


Job = Callable[[str, Callable[[], bool]], object]


class Trainer:
    """Runs `job` on a schedule and on request, never while another replica does."""

    def __init__(self, settings: Settings, client: redis.Redis, job: Job) -> None:
        self.settings = settings
        self.client = client
        self.job = job
        self.lock = TrainerLock(
            client, meta_key(settings.redis_prefix, "trainer-lock"), settings.trainer_lock_seconds
        )
        self.requests_key = meta_key(settings.redis_prefix, "trainer-requests")
        self.metrics_key = metrics_key(settings.redis_prefix)
        self.runs = 0
        self._signalled = threading.Event()

    def request(self, reason: str = "on demand") -> None:
        """Ask whichever trainer replica polls next to run now."""
        self.client.rpush(self.requests_key, reason.encode())

    def run_once(self, reason: str) -> bool:
        """Run the job if this replica gets the lock; False if another one is training."""
        if not self.lock.acquire():
            log.info("another trainer holds the lock; skipping this %s run", reason)
            return False
        renewer = Renewer(self.lock)
        renewer.start()
        try:
            self.job(reason, lambda: not renewer.lost)
            self.runs += 1
            # for the "trainer stale" alert (`vigil_trainer_last_success_timestamp_seconds`)
            self.client.hset(self.metrics_key, "trainer_last_success_s", time.time())
        except Exception as exc:
            log.error("training run (%s) failed: %s", reason, exc)
        finally:
            renewer.stop()
            if not self.lock.release():
                log.warning("the trainer lock had expired before the run ended")
        return True

    def poll_requests(self) -> bool:
        """Drain pending requests (several collapse into one run); True if it trained."""
        pending = 0
        while self.client.lpop(self.requests_key) is not None:
            pending += 1
        if self._signalled.is_set():
            self._signalled.clear()
            pending += 1
        return self.run_once("request") if pending else False

    def serve(self) -> None:
        """Block running the schedule until SIGTERM/SIGINT; SIGUSR1 asks for a run now."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        s = self.settings
        trigger: CronTrigger | IntervalTrigger
        if s.train_cron:
            try:
                trigger = CronTrigger.from_crontab(s.train_cron)
            except ValueError as exc:
                raise SettingsError(f"invalid setting train_cron: {exc}") from None
        else:
            trigger = IntervalTrigger(minutes=s.train_interval_minutes)
        # One worker thread: a scheduled run and a requested one never overlap in-process.
        scheduler = BlockingScheduler(executors={"default": ThreadPoolExecutor(1)})
        # A request check skipped while a run is going is by design, not news.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        scheduler.add_job(self.run_once, trigger, args=["schedule"], **common)
        scheduler.add_job(
            self.poll_requests, IntervalTrigger(seconds=s.trainer_poll_seconds), **common
        )

        def stop(signum: int, frame: FrameType | None) -> None:
            scheduler.shutdown(wait=False)

        def wake(signum: int, frame: FrameType | None) -> None:
            self._signalled.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGUSR1, wake)
        log.info(
            "trainer scheduled: %s; requests checked every %.1f s",
            f"cron {s.train_cron!r}" if s.train_cron else f"every {s.train_interval_minutes} min",
            s.trainer_poll_seconds,
        )
        scheduler.start()


def default_job(settings: Settings, registry: ModelRegistry, options: TrainOptions) -> Job:
    """The scheduled run: recent history from the topic, fine-tune, promote if better."""
    from pipeline.models.training_data import read_topic

    def job(reason: str, still_owner: Callable[[], bool]) -> None:
        history = read_topic(settings)
        outcome = train_version(settings, registry, history, options, still_owner=still_owner)
        log.warning(
            "trainer (%s): %s held-out %.4f vs live %s %s -> %s",
            reason,
            outcome.version.id,
            outcome.challenger_loss,
            outcome.champion,
            "n/a" if outcome.champion_loss is None else f"{outcome.champion_loss:.4f}",
            "promoted" if outcome.promoted else f"kept live ({outcome.reason})",
        )

    return job


def run_trainer(settings: Settings, args: argparse.Namespace) -> int:
    """`vigil trainer`: serve the schedule until stopped."""
    from pipeline.state.redis import connect_redis, open_store

    torch.set_num_threads(max(1, settings.torch_threads))
    store = open_store(settings)
    registry = ModelRegistry(settings, store)
    registry.publish(registry.live_id())  # one made live before versions were published
    options = TrainOptions(
        scratch=False,
        promote="auto",
        train=TrainConfig(epochs=settings.train_epochs, device=settings.device),
    )
    client = connect_redis(settings.redis_address())
    trainer = Trainer(settings, client, default_job(settings, registry, options))
    if getattr(args, "now", False):
        trainer.run_once("start")
    trainer.serve()
    return 0
