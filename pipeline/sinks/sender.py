"""A bounded queue and a background thread per sink: the worker never waits on HTTP.

`submit` never blocks: when the queue is full the oldest alert is dropped (and counted),
as the newest says most about what is happening now. Each delivery is retried with
exponential backoff up to `retries` times; then it is dropped and counted as failed.
Streams matched by an active silence (`pipeline.state.labels`) are not sent.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.contracts.alerts import Alert

log = logging.getLogger(__name__)


class Sink(Protocol):
    name: str

    def deliver(self, alert: Alert) -> None:
        """Send one alert; raise on any failure (the sender retries)."""
        ...

    def tick(self) -> None:
        """Periodic work between alerts (Alertmanager re-sends firing alerts)."""
        ...


@dataclass
class SinkStats:
    delivered: int = 0
    failed: int = 0  # gave up after the retries
    dropped: int = 0  # queue full
    silenced: int = 0
    retries: int = 0


@dataclass
class SinkSender:
    """One sink's queue and thread; `close` stops it after at most `drain_s` of draining."""

    sink: Sink
    queue_size: int = 1000
    retries: int = 5
    backoff_s: float = 0.2
    max_backoff_s: float = 10.0
    tick_s: float = 1.0
    silenced: Callable[[str], bool] | None = None
    stats: SinkStats = field(default_factory=SinkStats)

    def __post_init__(self) -> None:
        self._queue: collections.deque[Alert] = collections.deque()
        self._wake = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(
            target=self._run, name=f"sink-{self.sink.name}", daemon=True
        )
        self._thread.start()

    def submit(self, alerts: list[Alert]) -> None:
        with self._wake:
            for alert in alerts:
                if len(self._queue) >= self.queue_size:
                    self._queue.popleft()
                    self.stats.dropped += 1
                self._queue.append(alert)
            self._wake.notify()

    def pending(self) -> int:
        with self._wake:
            return len(self._queue)

    def close(self, drain_s: float = 2.0) -> None:
        """Try to deliver what is queued for up to `drain_s`, then stop."""
        deadline = time.monotonic() + drain_s
        while self.pending() and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.02)
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(timeout=max(deadline - time.monotonic(), 0.1))

    def _next(self) -> Alert | None:
        with self._wake:
            if not self._queue and not self._stop:
                self._wake.wait(self.tick_s)
            return self._queue.popleft() if self._queue and not self._stop else None

    def _run(self) -> None:
        while not self._stop:
            alert = self._next()
            if alert is not None:
                self._send(alert)
            try:
                self.sink.tick()
            except Exception as exc:  # a sink's periodic work must not end the thread
                log.warning("sink %s: %s", self.sink.name, exc)

    def _send(self, alert: Alert) -> None:
        if self.silenced is not None and self._is_silenced(alert.stream):
            self.stats.silenced += 1
            return
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                self.sink.deliver(alert)
                self.stats.delivered += 1
                return
            except Exception as exc:
                if attempt == self.retries or self._stop:
                    log.warning("sink %s gave up on alert %s: %s", self.sink.name, alert.id, exc)
                    self.stats.failed += 1
                    return
                self.stats.retries += 1
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)

    def _is_silenced(self, stream: str) -> bool:
        assert self.silenced is not None
        try:
            return self.silenced(stream)
        except Exception as exc:  # Redis away: deliver rather than lose the page
            log.warning("could not read silences (%s); delivering", exc)
            return False
