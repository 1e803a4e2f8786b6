"""The worker loop: Kafka batch -> validated events -> batched detector step -> alerts.

Each polled batch is processed and committed in this order (the numbers match the
comments in `Worker.process`); the order is what makes "nothing lost, nothing applied
twice" hold whatever moment a worker is killed at:

0. switch to a newly promoted model version, if any (a whole batch is one model's);
1. decode and validate every record; bad ones become dead letters with a reason;
2. load the states of the batch's streams from Redis (one MGET);
3. step the detector, one batched call per "round" (round k holds the k-th event of every
   stream in the batch, so a stream's events are applied in offset order); events at or
   below the offset recorded in the state are replays and are skipped; out-of-order,
   duplicate-timestamp and feature-mismatch events become dead letters;
4. publish alerts and dead letters and wait for the broker's acknowledgement;
5. save the changed states in one Lua call that refuses any write older than what Redis
   holds (a worker that lost its partition cannot overwrite newer state);
6. commit the batch's offsets.

Steps 5 and 6 run once per checkpoint (`pipeline.worker.checkpoint`), not per batch: the states a
batch changes stay in memory and further batches of the same interval apply to them;
every `commit_interval_ms`, when the worker goes idle or stops, and before the group
takes partitions away, all of them are saved and then all the interval's offsets
committed. Steps 0-4 stay per batch, so alerts are not delayed by it.

A crash before 5 replays the interval: alerts are re-sent with the same deterministic
ids. A crash between 5 and 6 replays it too, but the states already record those
offsets, so the events are skipped. Redis being unreachable pauses the loop (with
backoff) before 6, so nothing is committed that was not applied.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TypeVar

import numpy as np
import torch

from detectors.detector import RecurrentDetector
from detectors.policy import NONE
from detectors.state import StateFormatError
from pipeline.contracts.alerts import Alert
from pipeline.contracts.columns import DecodedBatch
from pipeline.contracts.deadletter import (
    DUPLICATE_TS,
    FEATURE_MISMATCH,
    FUTURE_TIMESTAMP,
    OUT_OF_ORDER,
    Rejected,
    reject,
)
from pipeline.contracts.mapping import batch_decoder
from pipeline.kafka.base import EventSource, RecordBatch, RecordSink
from pipeline.settings import Settings
from pipeline.sinks.sender import SinkSender
from pipeline.state.base import StateStore, StoreUnavailable
from pipeline.state.peaks import merge_peaks
from pipeline.worker.alerting import alerts_of_event
from pipeline.worker.batch import BatchColumns, ViewBuilder, deadletter_record, next_offsets
from pipeline.worker.budget import BatchBudget
from pipeline.worker.checkpoint import Checkpoint
from pipeline.worker.model_watch import ModelWatcher
from pipeline.worker.progress import ProgressLog
from pipeline.worker.resets import ResetWatcher, decode_states, take_resets
from pipeline.worker.stats import BATCH_BUCKETS, WorkerStats

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass
class BatchOutcome:
    alerts: list[Alert]
    rejected: list[Rejected]
    offsets: dict[tuple[str, int], int]


class Worker:
    """One consumer-group member; all I/O goes through the injected source, sink and store."""

    def __init__(
        self,
        settings: Settings,
        source: EventSource,
        sink: RecordSink,
        store: StateStore,
        detector: RecurrentDetector,
        on_alert: Callable[[Alert], None] | None = None,
        watcher: ModelWatcher | None = None,
        senders: Sequence[SinkSender] = (),
        resets: ResetWatcher | None = None,
    ) -> None:
        self.settings = settings
        self.watcher = watcher
        self.resets = resets
        self.source = source
        self.sink = sink
        self.store = store
        self.detector = detector
        self.on_alert = on_alert
        self.senders = list(senders)  # alert sinks beside the topic (`pipeline.sinks`)
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the group has assigned us partitions
        # For the health port (`pipeline.worker.health`): when the loop last turned (a
        # poll, or a retry while Redis is down), and whether Redis is failing now.
        self.turned_at: float | None = None
        self.store_down = False
        self._peaks: dict[tuple[int, str], float] = {}  # until the checkpoint saves them
        self.checkpoint = Checkpoint(detector.layout, settings.history_length)
        self.budget = BatchBudget(settings.batch_budget_ms, settings.max_poll_records)
        self._horizon_ms = 0  # the latest event time accepted, set per batch
        self._decode = batch_decoder(settings)  # the contract's fast path unless mapped
        self.progress = ProgressLog(settings.progress_log_seconds)
        # Save and commit before partitions move to another worker (called inside poll).
        source.on_revoke(self._revoked)

    # --- the loop -------------------------------------------------------------------
    def stop(self) -> None:
        """Finish the current batch, commit it, then leave the group."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, idle_exit_s: float | None = None, max_records: int | None = None) -> WorkerStats:
        """Poll and process until stopped (or idle for idle_exit_s, or max_records seen)."""
        last_data = time.monotonic()
        try:
            while not self._stop.is_set():
                records = self.source.poll(self.settings.poll_timeout_ms, self.budget.limit())
                self.turned_at = time.monotonic()
                if len(records) or not self.ready.is_set():
                    # Idle time counts only once the group has given us partitions.
                    last_data = time.monotonic()
                    if self.source.assignment():
                        self.ready.set()
                if len(records):
                    began = time.perf_counter()
                    self.process_with_retry(records)
                    self.budget.observe(len(records), time.perf_counter() - began)
                    if self._checkpoint_due():
                        self.save_checkpoint()
                else:
                    self.save_checkpoint()  # idle: nothing waits in memory
                    if idle_exit_s is not None and time.monotonic() - last_data > idle_exit_s:
                        break
                if max_records is not None and self.stats.records >= max_records:
                    break
                self.progress.tick(self.stats)
            self.save_checkpoint()
        finally:
            if self.checkpoint.batches:  # leaving on an error: the batches taken in are whole
                try:
                    self.save_checkpoint()
                except Exception as exc:
                    log.warning("could not save the last checkpoint (%s); it is replayed", exc)
            self.source.close()
            self.sink.close()
            for sender in self.senders:
                sender.close()
        return self.stats

    def _checkpoint_due(self) -> bool:
        cp, s = self.checkpoint, self.settings
        age_ms = (time.monotonic() - cp.opened) * 1000.0
        return age_ms >= s.commit_interval_ms or len(cp) >= s.max_cached_streams

    def _revoked(self, partitions: set[tuple[str, int]]) -> None:
        if self.checkpoint.batches:
            log.info("partitions %s revoked: saving and committing first", sorted(partitions))
            self.save_checkpoint()
        else:
            self.checkpoint.clear()

    def save_checkpoint(self) -> None:
        """5. save every state changed since the last checkpoint, with the API's view and
        the counters (one round trip); 6. commit the interval's offsets; drop the cache."""
        cp = self.checkpoint
        if not cp.batches:
            cp.clear()  # states loaded for batches that applied nothing
            return
        # a stream reset since the last batch must not be saved back
        self.stats.streams_reset += self._with_backoff(self._take_resets)
        lag = [(f"=lag:{t}:{p}", n) for (t, p), n in self.source.lag(cp.offsets).items()]
        self.stats.lag = sum(n for _, n in lag) if lag else None
        items, view = cp.save_args(lag)
        written = self._with_backoff(lambda: self.store.save(items, view))
        ttl = int(self.settings.peak_retention_hours * 3600)
        self._with_backoff(lambda: self.store.save_peaks(self._peaks, ttl))
        self._peaks = {}
        self.stats.writes_refused += written.count(False)
        try:
            self.source.commit(cp.offsets)
        except Exception as exc:  # the group moved on: the new owner replays; fencing holds
            self.stats.commit_failures += 1
            log.warning("offset commit failed (%s); the partition's new owner replays", exc)
        self.stats.alerts += len(cp.alerts)
        self.stats.last_batch_done = time.monotonic()
        alerts = cp.alerts
        cp.clear()
        if self.on_alert is not None:
            for alert in alerts:
                self.on_alert(alert)

    def _take_resets(self) -> int:
        return take_resets(self.resets, self.checkpoint, self.detector.layout)

    def process_with_retry(self, records: RecordBatch) -> None:
        """Process a batch; while Redis is unreachable, wait and retry without committing.

        Loading fails before anything is published or held, so the whole batch is
        retried; a failed checkpoint save is retried on its own (`save_checkpoint`), so
        alerts and dead letters already acknowledged by the broker are not sent again.
        """
        self._with_backoff(lambda: self.process(records))

    def _with_backoff(self, action: Callable[[], _T]) -> _T:
        delay = 0.1
        while True:
            try:
                result = action()
                self.store_down = False
                return result
            except StoreUnavailable as exc:
                self.store_down = True
                self.turned_at = time.monotonic()
                self.stats.store_retries += 1
                log.warning("Redis unavailable (%s); retrying in %.1fs", exc, delay)
                if self._stop.wait(delay):
                    raise
                delay = min(delay * 2, 5.0)

    # --- one batch ------------------------------------------------------------------
    def process(self, records: RecordBatch) -> BatchOutcome:
        s = self.settings
        started = time.perf_counter()
        # 0. a newly promoted (or rolled back) model takes over at this batch boundary;
        #    each stream's hidden state is re-warmed from its ring buffer on first touch
        if self.watcher is not None and (new_model := self.watcher.poll()) is not None:
            self.detector = RecurrentDetector(new_model, self.detector.params, self.settings.device)
            self.stats.model_swaps += 1
        self.stats.streams_reset += self._take_resets()  # reset streams start afresh
        if self.stats.first_batch_at is None:
            self.stats.first_batch_at = time.monotonic()
        applied_before = (self.stats.applied, self.stats.replays_skipped)
        self.stats.batches += 1
        decoded = self._decode(records, self.detector.max_features)  # 1. decode and validate
        rejected = decoded.rejected

        # 2. load the states of the batch's streams that this checkpoint does not hold yet
        #    (one round trip)
        cols = BatchColumns.of(decoded, records, self.detector.max_features)
        cp = self.checkpoint
        missing = cp.missing(cols.stream_ids)
        if missing:
            loaded, known = self._load(missing)
            self.stats.streams_created += int((~known).sum())
            cp.insert(missing, loaded)
        rows = cp.rows_of(cols.stream_ids)
        states = cp.states[rows]

        # 3. step the detector, one batched call per round; an event further ahead of
        #    this worker's clock than max_future_seconds is dead-lettered, never applied
        #    (applied, it would make every later event of its stream out of order)
        self._horizon_ms = int((time.time() + s.max_future_seconds) * 1000)
        alerts: list[Alert] = []
        dirty = np.zeros(len(cols.stream_ids), dtype=bool)
        view = ViewBuilder(cols, s.history_length, s.peak_bucket_seconds * 1000, s.alert_clear)
        for members in cols.rounds():
            self.stats.rounds += 1
            applied = self._apply_round(members, decoded, records, cols, states, alerts, view)
            dirty[applied] = True

        # 4. publish alerts and dead letters, and wait until the broker has them
        alert_json = [alert.to_json() for alert in alerts]
        for alert, body in zip(alerts, alert_json, strict=True):
            self.sink.send(s.alerts_topic, alert.stream.encode(), body)
        for bad in rejected:
            self.sink.send(s.deadletter_topic, *deadletter_record(bad))
            self.stats.deadletters[bad.reason] += 1
        if alerts or rejected:
            self.sink.flush()
        for sender in self.senders:  # after the broker has them; never blocks
            sender.submit(alerts)
        created = np.array(records.timestamps, dtype=np.float64)
        self.stats.record_latency((time.time() * 1000.0 - created).tolist())

        # 5./6. come with the checkpoint (`save_checkpoint`); until then the batch's states,
        #    view and offsets are held in memory
        changed = np.flatnonzero(dirty).tolist()
        metrics = self._batch_metrics(records, rejected, alerts, applied_before, started)
        batch_view = view.batch(changed, alert_json, metrics)
        cp.add_batch(rows, states, dirty, batch_view, alerts, next_offsets(records))
        merge_peaks(self._peaks, view.peaks)
        self.stats.records += len(records)
        return BatchOutcome(alerts, rejected, cp.offsets)

    def _batch_metrics(
        self,
        records: RecordBatch,
        rejected: list[Rejected],
        alerts: list[Alert],
        before: tuple[int, int],
        started: float,
    ) -> list[tuple[str, float | str]]:
        """Counter increments for the shared metrics hash (read by the API's /metrics)."""
        seconds = time.perf_counter() - started
        self.stats.record_batch(seconds)
        metrics: list[tuple[str, float | str]] = [
            ("records", len(records)),
            ("applied", self.stats.applied - before[0]),
            ("replays_skipped", self.stats.replays_skipped - before[1]),
            ("alerts", len(alerts)),
            ("batches", 1),
            ("batch_seconds_sum", seconds),
            ("=model_version", self.detector.version),
        ]
        metrics += [(f"batch_le_{b}", 1) for b in BATCH_BUCKETS if seconds <= b]
        reasons = Counter(bad.reason for bad in rejected)
        metrics += [(f"deadletter:{reason}", n) for reason, n in reasons.items()]
        return metrics

    def _load(self, stream_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        layout = self.detector.layout
        blobs = self.store.load(stream_ids) if stream_ids else []
        try:
            return decode_states(layout, blobs)
        except StateFormatError:
            # Decode one by one so a single bad record resets only its own stream.
            good: list[bytes | None] = []
            for sid, blob in zip(stream_ids, blobs, strict=True):
                try:
                    decode_states(layout, [blob])
                    good.append(blob)
                except StateFormatError as exc:
                    log.error("unreadable state for stream %r (%s); starting it afresh", sid, exc)
                    self.stats.states_reset += 1
                    good.append(None)
            return decode_states(layout, good)

    def _apply_round(
        self,
        members: np.ndarray,
        decoded: DecodedBatch,
        batch: RecordBatch,
        cols: BatchColumns,
        states: np.ndarray,
        alerts: list[Alert],
        view: ViewBuilder,
    ) -> np.ndarray:
        """Apply one event per stream (`members`: indices into the batch's events);
        returns the stream indices whose state changed."""
        sidx, part, offs = cols.sidx[members], cols.part[members], cols.offs[members]
        ts, ftag = cols.ts[members], cols.ftag[members]
        st = states[sidx]
        started = st["count"] > 0
        replay = (st["partition"] == part) & (offs <= st["offset"])
        future = ~replay & (ts > self._horizon_ms)
        judged = started & ~replay & ~future  # checked against the stream's last event
        older = judged & (ts < st["last_ts"])
        same_ts = judged & (ts == st["last_ts"])
        mismatch = judged & ~older & ~same_ts & (st["feature_tag"] != ftag)
        self.stats.replays_skipped += int(replay.sum())
        ahead = self.settings.max_future_seconds
        for flag, reason, why in (
            (future, FUTURE_TIMESTAMP, f"ts is over {ahead:g} s ahead of the worker's clock"),
            (older, OUT_OF_ORDER, "ts is older than the stream's last applied event"),
            (same_ts, DUPLICATE_TS, "ts equals the stream's last applied event"),
            (mismatch, FEATURE_MISMATCH, "feature names differ from the stream's first event"),
        ):
            for j in members[flag].tolist():
                decoded.rejected.append(reject(batch.record(decoded.rows[j]), reason, why))
        ok = ~(replay | future | older | same_ts | mismatch)
        good = np.flatnonzero(ok)
        if len(good) == 0:
            return np.zeros(0, dtype=np.int64)

        events = members[good]
        out = self.detector.step(cols.x[events], cols.mask[events], st[good], ts[good])
        new = out.states
        new["partition"], new["offset"], new["last_ts"] = part[good], offs[good], ts[good]
        new["feature_tag"] = ftag[good]
        states[sidx[good]] = new
        self.stats.applied += len(good)
        self.stats.rewarmed += int(out.rewarmed.sum())
        view.add(events, out)

        before = st[good]
        detector = f"{self.detector.name}/{self.detector.loaded.config.kind}"
        for row in np.flatnonzero(out.action != NONE).tolist():
            j = int(events[row])
            r = decoded.rows[j]
            event = decoded.event(j, batch.partitions[r], batch.offsets[r], batch.topics[r])
            alerts += alerts_of_event(event, out, row, before[row], self.detector.version, detector)
        return sidx[good]


def install_signal_handlers(worker: Worker) -> None:
    """SIGTERM/SIGINT: finish the batch, commit, leave the group."""

    def _handler(signum: int, frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def configure_torch(settings: Settings) -> None:
    """One intra-op thread per worker process: scale with processes, not threads."""
    torch.set_num_threads(settings.torch_threads)
