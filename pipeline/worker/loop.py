"""The worker loop: Kafka batch -> validated events -> batched detector step -> alerts.

Each polled batch goes through these steps (numbered as in `Worker.process`); the order
makes "nothing lost, nothing applied twice" hold whenever a worker is killed:

0. switch to a newly promoted model version, if any (a whole batch is one model's);
1. decode and validate every record; bad ones become dead letters with a reason;
   key-less ones are re-published keyed by stream id (`batch.split_unkeyed`);
2. load the states of the batch's streams not held yet (one round trip, which also
   tells whether Redis forgot states: `pipeline.worker.restore`);
3. step the detector, one batched call per "round" (round k holds the k-th event of every
   stream in the batch, so a stream's events are applied in offset order); events at or
   below the offset recorded in the state are replays and are skipped; out-of-order,
   duplicate-timestamp and feature-mismatch events become dead letters;
4. publish alerts and dead letters and wait for the broker's acknowledgement;
5. write the changed states to the changelog topic, then save them in one Lua call that
   refuses a write older than what Redis holds (from a worker that lost the partition);
6. commit the batch's offsets.

Steps 5 and 6 run once per checkpoint (`pipeline.worker.checkpoint`): every
`commit_interval_ms`, when the worker goes idle or stops, and before the group takes
partitions away. States stay held between checkpoints. Steps 0-4 stay per batch, so
alerts are not delayed by it; step 5 runs on a background thread while the next batches
go on, and step 6 follows once it is done (`pipeline.worker.saving`). A crash before 5
replays the interval (alerts are re-sent with the same deterministic ids); between 5 and
6 too, but the states already record those offsets. Redis being unreachable pauses the
loop before 6.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

import numpy as np

from detectors.detector import RecurrentDetector
from pipeline.contracts.alerts import Alert
from pipeline.contracts.mapping import BatchDecoder
from pipeline.kafka.base import EventSource, RecordBatch, RecordSink
from pipeline.sinks.sender import SinkSender
from pipeline.state.base import BatchView, StateLost, StateStore, StoreUnavailable, split_save
from pipeline.state.peaks import merge_peaks
from pipeline.worker.batch import (
    BatchColumns,
    BatchOutcome,
    ViewBuilder,
    deadletter_record,
    decode_loaded,
    next_offsets,
    routed_record,
    split_unkeyed,
)
from pipeline.worker.budget import BatchBudget
from pipeline.worker.checkpoint import Checkpoint, gather
from pipeline.worker.config import LoopConfig
from pipeline.worker.model_watch import ModelWatcher
from pipeline.worker.progress import ProgressLog
from pipeline.worker.resets import RESETS_EVERY_S, ResetWatcher, take_resets
from pipeline.worker.restore import StateGuard
from pipeline.worker.rounds import BatchRounds, apply_round
from pipeline.worker.saving import SAVE_PART, SaveInFlight, Snapshot, take_snapshot
from pipeline.worker.stats import WorkerStats, batch_metrics

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class Worker:
    """One consumer-group member; all I/O goes through the injected source, sink and store."""

    def __init__(
        self,
        config: LoopConfig,
        source: EventSource,
        sink: RecordSink,
        store: StateStore,
        detector: RecurrentDetector,
        decode: BatchDecoder,
        guard: StateGuard,
        on_alert: Callable[[Alert], None] | None = None,
        watcher: ModelWatcher | None = None,
        senders: Sequence[SinkSender] = (),
        resets: ResetWatcher | None = None,
    ) -> None:
        self.config = config
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
        # poll, or a retry while Redis is down), whether Redis is failing now, and
        # whether states Redis forgot are being restored.
        self.turned_at: float | None = None
        self.store_down = self.restoring = False
        self.rebalancing_since: float | None = time.monotonic()  # until the first assignment
        # When the loop last made progress: a batch, or an empty poll with the group
        # settled (no rebalance under way, none in that poll). A group that rebalances
        # over and over never settles, although each rebalance completes (health.py).
        self.progress_at = time.monotonic()
        self._rebalanced = False
        self._peaks: dict[tuple[int, str], float] = {}  # until the checkpoint saves them
        self.checkpoint = Checkpoint(detector.layout, config.history_length)
        self.budget = BatchBudget(config.batch_budget_ms, config.max_poll_records)
        self._decode = decode  # the contract's fast path unless the topic is mapped
        self.progress = ProgressLog(config.progress_log_seconds)
        self.guard = guard
        self._saving = SaveInFlight()  # the checkpoint being written, if any
        self._refused: list[str] = []  # streams whose last save was refused
        # Save and commit before partitions move to another worker (called inside poll).
        source.on_revoke(self._revoked)
        source.on_assign(self._assigned)

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
                self._rebalanced = False
                records = self.source.poll(self.config.poll_timeout_ms, self.budget.limit())
                self.turned(len(records))
                if len(records) or not self.ready.is_set():
                    # Idle time counts only once the group has given us partitions.
                    last_data = time.monotonic()
                    if self.source.assignment():
                        self.ready.set()
                self._collect(block=False)  # a finished save: commit its offsets
                if len(records):
                    began = time.perf_counter()
                    self.process_with_retry(records)
                    self.progress_at = time.monotonic()  # also after a long Redis outage
                    self.budget.observe(len(records), time.perf_counter() - began)
                    if self._checkpoint_due():
                        self.save_checkpoint(wait=False)
                else:
                    self.save_checkpoint(wait=False)  # idle: nothing waits in memory
                    self._probe()
                    if idle_exit_s is not None and time.monotonic() - last_data > idle_exit_s:
                        break
                if max_records is not None and self.stats.records >= max_records:
                    break
                self.progress.tick(self.stats)
            self.save_checkpoint()
        finally:
            if self.checkpoint.batches or self._saving:  # leaving on an error: the batches
                try:  # taken in are whole
                    self.save_checkpoint()
                except Exception as exc:
                    log.warning("could not save the last checkpoint (%s); it is replayed", exc)
            self._saving.close()
            self.guard.close()
            self.source.close()
            self.sink.close()
            for sender in self.senders:
                sender.close()
        return self.stats

    def _checkpoint_due(self) -> bool:
        cp, s = self.checkpoint, self.config
        age_ms = (time.monotonic() - cp.opened) * 1000.0
        return age_ms >= s.commit_interval_ms or len(cp) >= s.max_cached_streams

    def turned(self, n_records: int) -> None:
        """After each poll: the loop turned; it made progress if it got records, or if
        the group is settled (see `progress_at`)."""
        self.turned_at = time.monotonic()
        if n_records or (not self._rebalanced and self.rebalancing_since is None):
            self.progress_at = self.turned_at

    def _assigned(self, partitions: set[tuple[str, int]]) -> None:
        self.rebalancing_since = None
        self._rebalanced = True

    def _revoked(self, partitions: set[tuple[str, int]]) -> None:
        self.rebalancing_since = self.rebalancing_since or time.monotonic()
        self._rebalanced = True
        if self.checkpoint.batches or self._saving:
            log.info("partitions %s revoked: saving and committing first", sorted(partitions))
            self.save_checkpoint()
        # Another member may own them next and write their states: stop holding them.
        mine = {p for t, p in partitions if t == self.config.events_topic}
        self.checkpoint.drop_partitions(mine)
        self.guard.revoked(mine)

    def save_checkpoint(self, wait: bool = True) -> None:
        """5. save every state changed since the last checkpoint, with the API's view and
        the counters (one round trip); 6. commit the interval's offsets. States stay held.
        The save runs on a background thread (`pipeline.worker.saving`) while the loop goes
        on; the commit follows when it is done, or now with `wait`."""
        cp = self.checkpoint
        if cp.batches:
            self._collect(block=True)  # one save at a time: the previous one commits first
            # a stream reset since the last batch must not be saved back
            self.stats.streams_reset += self._with_backoff(self._take_resets)
            lag = [(f"=lag:{t}:{p}", n) for (t, p), n in self.source.lag(cp.offsets).items()]
            self.stats.lag = sum(n for _, n in lag) if lag else None
            snap = take_snapshot(cp, lag + self.guard.marks(cp.offsets), self._peaks,
                                 self.guard.owned(), self.config.max_cached_streams,
                                 self._refused)  # fmt: skip
            self._peaks, self._refused = {}, []
            self._saving.start(self._write, snap)
        if wait:
            self._collect(block=True)

    def _write(self, snap: Snapshot) -> list[bool]:
        """On the save thread: the changelog has every state before Redis does. Redis
        gets them in parts, each with the store to itself (a load of the loop waits for
        one part, not the whole save; a loss a part finds is restored before the next)."""
        if self.guard.changelog:
            self.guard.write(snap.items, snap.partitions)
        written: list[bool] = []
        for items, view in split_save(snap.items, snap.view, SAVE_PART):
            with self._saving.store_lock:
                written += self._with_backoff(partial(self._save, items, view, snap.owned))
        ttl = int(self.config.peak_retention_hours * 3600)
        self._with_backoff(lambda: self.store.save_peaks(snap.peaks, ttl))
        return written

    def _collect(self, block: bool) -> None:
        """6. once a save is done, commit its offsets; its alerts then count as sent."""
        snap = self._saving.collect(block)
        if snap is None:
            return
        refused = [stream for (stream, _), ok in zip(snap.items, snap.written, strict=True)
                   if not ok]  # fmt: skip
        self.stats.writes_refused += len(refused)
        self._refused += refused  # another worker holds a newer state: ours is stale
        try:
            self.source.commit(snap.offsets)
        except Exception as exc:  # the group moved on: the new owner replays; fencing holds
            self.stats.commit_failures += 1
            log.warning("offset commit failed (%s); the partition's new owner replays", exc)
        self.stats.alerts += len(snap.alerts)
        self.stats.last_batch_done = time.monotonic()
        if self.on_alert is not None:
            for alert in snap.alerts:
                self.on_alert(alert)

    def _take_resets(self) -> int:
        return take_resets(self.resets, self.checkpoint, self.detector.layout)

    def _save(
        self, items: Sequence[tuple[str, bytes]], view: BatchView | None, owned: set[int]
    ) -> list[bool]:
        try:
            return self.store.save(items, view)
        except StateLost as lost:  # the save did happen; what Redis forgot did not
            self._restore(owned, str(lost))
            return lost.written or []

    def _probe(self) -> None:
        """Idle: still notice within a second that Redis forgot states."""
        if self.ready.is_set() and self.guard.probe_due():
            with contextlib.suppress(StoreUnavailable):  # the next batch waits for it
                self._load([])

    def _restore(self, partitions: set[int], why: str) -> None:
        """Not ready until every state Redis forgot is back (`pipeline.worker.restore`)."""
        self.restoring = True
        with self._saving.store_lock:
            restored = self._with_backoff(lambda: self.guard.restore(partitions, why))
        self.stats.state_losses += 1
        self.stats.streams_restored += restored
        self.restoring = False

    def process_with_retry(self, records: RecordBatch) -> None:
        """Process a batch; while Redis is unreachable, wait and retry without committing.
        Loading fails before anything is published or held, so the whole batch is
        retried (a failed checkpoint save is retried on its own, `save_checkpoint`)."""
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
        s = self.config
        started = time.perf_counter()
        # 0. a newly promoted (or rolled back) model takes over at this batch boundary;
        #    each stream's hidden state is re-warmed from its ring buffer on first touch
        if self.watcher is not None and (new_model := self.watcher.poll()) is not None:
            self.detector = RecurrentDetector(new_model, self.detector.params, self.config.device)
            self.stats.model_swaps += 1
        if self.resets is None or self.resets.due(RESETS_EVERY_S):  # reset streams start
            self.stats.streams_reset += self._take_resets()  # afresh
        if self.stats.first_batch_at is None:
            self.stats.first_batch_at = time.monotonic()
        applied_before = (self.stats.applied, self.stats.replays_skipped, self.stats.routed)
        self.stats.batches += 1
        every = self._decode(records, self.detector.max_features)  # 1. decode and validate
        rejected = every.rejected
        # key-less events go back to the topic keyed by stream id, to the owning partition
        decoded, unkeyed = split_unkeyed(every, records)
        routed = [routed_record(every, j, records) for j in unkeyed]

        # 2. load the states of the batch's streams that this checkpoint does not hold yet
        #    (one round trip)
        cols = BatchColumns.of(decoded, records, self.detector.max_features)
        cp = self.checkpoint
        behind = self.guard.behind(set(np.unique(cols.part).tolist()))
        if behind:
            self._restore(behind, "saved offsets behind the group's committed ones")
        missing = cp.missing(cols.stream_ids)
        if missing:
            loaded, known = self._load(missing)
            self.stats.streams_created += int((~known).sum())
            cp.insert(missing, loaded, cols.stream_partitions(missing))
        rows = cp.rows_of(cols.stream_ids)
        states = gather(cp.states, rows)

        # 3. step the detector, one batched call per round; an event further ahead of
        #    this worker's clock than max_future_seconds is dead-lettered, never applied
        #    (applied, it would make every later event of its stream out of order)
        horizon_ms = int((time.time() + s.max_future_seconds) * 1000)
        dirty = np.zeros(len(cols.stream_ids), dtype=bool)
        view = ViewBuilder(cols, s.history_length, s.peak_bucket_seconds * 1000, s.alert_clear)
        run = BatchRounds(decoded, records, cols, states, view, horizon_ms, s.max_future_seconds)
        for members in cols.rounds():
            self.stats.rounds += 1
            dirty[apply_round(members, run, self.detector, self.stats)] = True
        alerts = run.alerts

        # 4. publish alerts and dead letters, and wait until the broker has them
        alert_json = [alert.to_json() for alert in alerts]
        for alert, body in zip(alerts, alert_json, strict=True):
            self.sink.send(s.alerts_topic, alert.stream.encode(), body)
        for bad in rejected:
            self.sink.send(s.deadletter_topic, *deadletter_record(bad))
            self.stats.deadletters[bad.reason] += 1
        for key, value, headers in routed:
            self.sink.send(s.events_topic, key, value, headers)
        self.stats.routed += len(routed)
        if alerts or rejected or routed:
            self.sink.flush()
        for sender in self.senders:  # after the broker has them; never blocks
            sender.submit(alerts)
        created = np.array(records.timestamps, dtype=np.float64)
        self.stats.record_latency((time.time() * 1000.0 - created).tolist())

        # 5./6. come with the checkpoint (`save_checkpoint`); until then the batch's states,
        #    view and offsets are held in memory
        changed = np.flatnonzero(dirty).tolist()
        metrics = batch_metrics(self.stats, applied_before, len(records), rejected, alerts,
                                started, self.detector.version)  # fmt: skip
        batch_view = view.batch(changed, alert_json, metrics)
        cp.add_batch(rows, states, dirty, batch_view, alerts, next_offsets(records))
        merge_peaks(self._peaks, view.peaks)
        self.stats.records += len(records)
        return BatchOutcome(alerts, rejected, cp.offsets)

    def _load(self, stream_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        layout = self.detector.layout
        with self._saving.store_lock:  # not while a save is under way (`saving`)
            try:
                blobs = self.store.load(stream_ids)
            except StateLost as lost:  # before anything is applied to what Redis forgot
                self._restore(self.guard.owned(), str(lost))
                blobs = self.store.load(stream_ids)
        states, known, unreadable = decode_loaded(layout, stream_ids, blobs)
        self.stats.states_reset += unreadable
        return states, known
