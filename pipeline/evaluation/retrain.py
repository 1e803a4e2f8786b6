"""`vigil backtest --retrain-every DURATION`: the scheduled trainer, replayed causally.

A deployment with `vigil trainer` does not serve one model forever: every interval the
trainer reads what the events topic has shown, fine-tunes the live model on it, compares
challenger and champion on the newest held-out part, and promotes the winner; workers
notice the new live version (`ModelWatcher`) and swap it in at a batch boundary, each
stream re-warming its recurrent state from its ring buffer. This module replays exactly
that, in event time:

1. replay every file as one stream of one topic up to the next boundary (`Replay.run`);
2. the history is every event each stream has shown so far (the trainer reads the
   topic: one model for all streams of a topic), as the trainer's `History`;
3. `train_version` - the trainer's own run: warm start from the live model, validate
   against it, register, promote only if better - on a registry in a scratch folder;
4. the watcher polls the registry as a worker does and, on a new live version, the
   replay swaps in a detector built from it, as the worker does; go on to 1.

So the alerts of such a backtest are the alerts a deployment with the trainer would
have raised. Cost: one training run per boundary on all history so far (capped at the
trainer's `train_max_records` newest events), on top of the replay.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from detectors.evaluation.replay import Replay, SeriesResult
from detectors.forecaster import LoadedModel
from detectors.training.train import TrainConfig
from pipeline.evaluation.tables import Grid
from pipeline.models.registry import ModelRegistry, RegistryError
from pipeline.models.serving import build_detector
from pipeline.models.trainer import TrainOptions, TrainOutcome, train_version
from pipeline.models.training_data import History, StreamSeries, TrainingDataError
from pipeline.settings import Settings
from pipeline.state.memory import MemoryStateStore
from pipeline.worker.model_watch import ModelWatcher

log = logging.getLogger(__name__)

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``6h``, ``1d`` or plain seconds -> seconds; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise ValueError(f"duration {text!r}: use a number with s, m, h or d (e.g. 6h)")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


@dataclass(frozen=True)
class RetrainRun:
    """One boundary of the loop, for the report."""

    at_ms: int
    events: int
    version: str
    champion: str
    challenger_loss: float
    champion_loss: float | None
    promoted: bool
    seconds: float

    @classmethod
    def of(cls, at_ms: int, events: int, outcome: TrainOutcome, seconds: float) -> RetrainRun:
        return cls(
            at_ms,
            events,
            outcome.version.id,
            outcome.champion,
            outcome.challenger_loss,
            outcome.champion_loss,
            outcome.promoted,
            seconds,
        )


def history_so_far(
    streams: Sequence[tuple[str, Sequence[str]]], run: Replay, budget: int
) -> History:
    """What each stream has shown up to the replay's position (the newest ``budget``
    events in all, shared evenly): the trainer's input, as it would read the topic."""
    found = {}
    per_stream = max(1, budget // max(len(streams), 1))
    for i, (name, columns) in enumerate(streams):
        end = int(run.pos[i])
        start = max(0, end - per_stream)
        ts = run.ts[i, start:end].tolist() if run.ts is not None else list(range(start, end))
        rows = run.x[i, start:end, : len(columns)].astype(float).tolist()
        found[name] = StreamSeries(tuple(columns), ts, [tuple(r) for r in rows])
    return History(found, "backtest replay", records=sum(len(s.ts_ms) for s in found.values()))


def starting_model(settings: Settings, version: str | None) -> LoadedModel:
    """The model a backtest starts from: a registry version, or the shipped generic one."""
    registry = ModelRegistry(settings, MemoryStateStore(settings.redis_prefix))
    return registry.shipped() if version is None else registry.load(version)


RUNS_FILE = "retrain.json"


def write_runs(out: Path, runs: Sequence[RetrainRun]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / RUNS_FILE).write_text(json.dumps([asdict(r) for r in runs], indent=1))


def runs_grid(out: Path) -> Grid:
    """The loop's training runs as a table (from the backtest's retrain.json)."""
    grid = Grid(
        "Trainer runs replayed",
        ["at (event time)", "events", "version", "held-out loss", "live's loss", "promoted", "s"],
    )
    for r in json.loads((out / RUNS_FILE).read_text()):
        champion = "-" if r["champion_loss"] is None else f"{r['champion_loss']:.4f}"
        grid.add(str(np.datetime64(r["at_ms"], "ms")), f"{r['events']:,}", r["version"],
                 f"{r['challenger_loss']:.4f}", champion, "yes" if r["promoted"] else "no",
                 f"{r['seconds']:.0f}")  # fmt: skip
    return grid


def _scratch_registry(settings: Settings, root: Path, start: LoadedModel) -> ModelRegistry:
    """A registry in a scratch folder whose live model is ``start`` (the loop's champion)."""
    registry = ModelRegistry(settings, MemoryStateStore(settings.redis_prefix), root)
    if start.version != registry.shipped_id():
        first = registry.register(
            start.model, window={}, metrics={}, device="cpu", parent=start.version
        )
        registry.promote(first.id)
    return registry


def replay_retraining(
    settings: Settings,
    start: LoadedModel,
    streams: Sequence[tuple[str, Sequence[str]]],
    series: Sequence[np.ndarray],
    times: Sequence[np.ndarray],
    every_s: float,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[SeriesResult], list[RetrainRun]]:
    """Replay ``series`` (one stream each: name and column names) from model ``start``,
    with the trainer's loop every ``every_s`` seconds of event time."""
    with tempfile.TemporaryDirectory(prefix="vigil-retrain-") as scratch:
        registry = _scratch_registry(settings, Path(scratch), start)
        live = registry.live_model()
        ticks = iter(range(1, 1 << 62))
        poll = settings.model_poll_seconds + 1.0
        watcher = ModelWatcher(registry, poll, live, lambda: next(ticks) * poll)
        run = Replay(build_detector(settings, live), series, times, progress)
        first = min(int(t[0]) for t in times if len(t))
        last = max(int(t[-1]) for t in times if len(t))
        tc = TrainConfig(epochs=settings.train_epochs, device=settings.device)
        options = TrainOptions(train=tc)
        runs: list[RetrainRun] = []
        boundary = first + round(every_s * 1000.0)
        while boundary <= last:
            run.run(boundary)
            history = history_so_far(streams, run, settings.train_max_records)
            started = time.perf_counter()
            try:
                outcome = train_version(settings, registry, history, options)
            except (RegistryError, TrainingDataError) as exc:  # too little history yet
                log.info("retrain at %d skipped: %s", boundary, exc)
            else:
                seconds = time.perf_counter() - started
                runs.append(RetrainRun.of(boundary, history.events, outcome, seconds))
                new_model = watcher.poll()  # the worker's check, at this batch boundary
                if new_model is not None:
                    run.swap(build_detector(settings, new_model))
            boundary += round(every_s * 1000.0)
        run.run()
        return run.results(), runs
