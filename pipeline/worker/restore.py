"""Seeing that Redis forgot states, and restoring them from the changelog topic.

Redis is the worker's store but not its only copy. At every checkpoint, before the states
are saved and the offsets committed, each changed state is also written to a compacted
Kafka topic (`changelog_topic`), keyed by stream id, on the partition number of its
stream's events. So whenever Kafka has committed an offset, the changelog holds, for each
stream of that partition, a state that includes every event below it. When Redis
forgets (restarted without persistence, restored from an older snapshot, flushed), the
worker reads the changelog partitions it owns and writes back through the fenced save
every state newer than what Redis has; the events after the committed offsets are then
replayed as after any crash, and each state's offset skips what it already includes.

How a loss is seen, never silently:
- while a worker runs: its save counter in Redis (`pipeline.state.base.Generation`),
  read in the same round trip as every load and save, goes back;
- for partitions a worker is given: the offset its states were last saved at (a mark
  written in the same atomic save) is behind the group's committed offset.

Without a changelog a loss cannot be repaired: the worker stops, committing nothing more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from pipeline.errors import UserError
from pipeline.kafka.backends import read_partitions
from pipeline.kafka.base import EventSource, RecordSink
from pipeline.settings import Settings
from pipeline.state.base import HEADER, BatchView, StateLost, StateStore, committed_field

log = logging.getLogger(__name__)

RESTORE_CHUNK = 5000
"""States per fenced save while restoring (one Lua call each)."""

Reader = Callable[[str, Sequence[int]], Iterator[tuple[bytes | None, bytes | None]]]


class StateLostForGood(UserError):
    """Redis forgot states and there is no changelog to restore them from."""


class StateGuard:
    """The changelog writes, the loss checks and the restore of one worker."""

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        source: EventSource,
        sink: RecordSink,
        read: Reader | None = None,
        changelog_sink: RecordSink | None = None,
    ) -> None:
        """`read`: (topic, partitions) -> their records; by default the Kafka backends'.
        `changelog_sink`: a producer of its own for the changelog, which is written from
        the checkpoint's thread (`pipeline.worker.saving`): flushing the alerts' producer
        would otherwise wait for thousands of states (default: `sink`)."""
        self.topic, self.changelog = settings.events_topic, settings.changelog_topic
        self.store, self.source = store, source
        self.sink = changelog_sink or sink
        self._own_sink = changelog_sink is not None
        self.read = read or (lambda topic, parts: read_partitions(settings, topic, parts))
        self.checked: set[int] = set()  # partitions whose marks were compared since assigned
        self._probed = 0.0

    def owned(self) -> set[int]:
        """The events partitions this worker owns now."""
        return {p for t, p in self.source.assignment() if t == self.topic}

    def probe_due(self) -> bool:
        """Whether an idle worker should look at Redis's counter again (once a second)."""
        if time.monotonic() - self._probed < 1.0:
            return False
        self._probed = time.monotonic()
        return True

    def write(self, items: Sequence[tuple[str, bytes]], partitions: np.ndarray) -> None:
        """Write the changed states to the changelog and wait for the broker to have them
        (before they are saved to Redis)."""
        if not self.changelog:
            return
        send, topic = self.sink.send, self.changelog
        for (stream, blob), partition in zip(items, partitions.tolist(), strict=True):
            send(topic, stream.encode(), blob, (), partition)
        self.sink.flush()

    def close(self) -> None:
        """Close the changelog's own producer, if it has one."""
        if self._own_sink:
            self.sink.close()

    def marks(self, offsets: dict[tuple[str, int], int]) -> list[tuple[str, float | str]]:
        """Metrics-hash updates recording the offsets a checkpoint saves states up to
        (`^`: only ever raised, so a late save of a worker that lost the partition cannot
        lower them)."""
        return [(f"^{committed_field(t, p)}", o) for (t, p), o in offsets.items()]

    def behind(self, partitions: set[int]) -> set[int]:
        """Of `partitions`, those newly given whose saved states are behind the group's
        committed offsets (Redis forgot them while another member, or none, owned them)."""
        new = partitions - self.checked
        if not new:
            return set()
        marks = self.store.committed_marks(self.topic, sorted(new))
        committed = self.source.committed({(self.topic, p) for p in new})
        self.checked |= new
        return {p for p in new if committed.get((self.topic, p), 0) > marks.get(p, 0)}

    def revoked(self, partitions: set[int]) -> None:
        self.checked -= partitions

    def restore(self, partitions: set[int], why: str) -> int:
        """Write back every changelog state of `partitions` newer than Redis's; returns
        how many streams Redis had lost (older or missing)."""
        if not self.changelog:
            raise StateLostForGood(
                f"Redis lost saved states ({why}) and no changelog topic is configured "
                "(VIGIL_CHANGELOG_TOPIC): stopping without committing anything more"
            )
        log.error("Redis lost saved states (%s): restoring partitions %s from %s",
                  why, sorted(partitions), self.changelog)  # fmt: skip
        latest = newest_states(self.read(self.changelog, sorted(partitions)))
        restored = 0
        for start in range(0, len(latest), RESTORE_CHUNK):
            chunk = latest[start : start + RESTORE_CHUNK]
            try:
                written = self.store.save(chunk)
            except StateLost as again:  # forgotten again meanwhile: what was written counts
                written = again.written or []
            restored += sum(written)
        log.warning("restored %d streams (of %d in the changelog)", restored, len(latest))
        counted = BatchView([], [], metrics=[("state_losses", 1), ("streams_restored", restored)])
        self.store.save([], counted)  # in the shared counters (the API's /metrics) at once
        return restored


def newest_states(records: Iterator[tuple[bytes | None, bytes | None]]) -> list[tuple[str, bytes]]:
    """Per stream, the changelog's state with the highest offset (a late write of a worker
    that had lost the partition can follow a newer one)."""
    best: dict[bytes, tuple[int, bytes]] = {}
    for key, value in records:
        if not key or value is None or len(value) < HEADER.size:
            continue
        offset = HEADER.unpack_from(value)[3]
        if key not in best or offset >= best[key][0]:
            best[key] = (offset, value)
    return [(key.decode(), value) for key, (_, value) in best.items()]
