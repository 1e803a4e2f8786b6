"""Dict-backed state store with Redis's semantics: the reference for tests and the demo."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.contracts.history import append_points
from pipeline.state.base import (
    ALERTS_KEPT,
    BatchView,
    Generation,
    accepts,
    checked_keys,
    committed_field,
    meta_key,
    state_key,
    validate_prefix,
)
from pipeline.state.peaks import merge_peaks


class MemoryStateStore:
    """Dict-backed store with the same semantics as Redis: unit tests and the reference."""

    def __init__(self, prefix: str = "vigil") -> None:
        self.prefix = validate_prefix(prefix)
        self._states: dict[str, bytes] = {}
        self._meta: dict[str, bytes] = {}
        self.history: dict[str, bytes] = {}
        self.scores: dict[str, float] = {}
        self.alerts: list[bytes] = []
        self.metrics: dict[str, float | str] = {}
        self.peaks: dict[tuple[int, str], float] = {}
        self.generation = Generation()
        self.generations: dict[str, int] = {}

    def load(self, streams: Sequence[str]) -> list[bytes | None]:
        self.generation.check(self.generations.get(self.generation.client, 0))
        return [self._states.get(state_key(self.prefix, s)) for s in streams]

    def save(self, items: Sequence[tuple[str, bytes]], view: BatchView | None = None) -> list[bool]:
        keys = checked_keys(self.prefix, items)
        results = []
        for i, (key, (stream, blob)) in enumerate(zip(keys, items, strict=True)):
            ok = accepts(self._states.get(key), blob)
            again = self._states.get(key) == blob  # a retry of a landed save: points are in
            if ok:
                self._states[key] = blob
                if view is not None:
                    if view.history_length > 0 and view.history[i] and not again:
                        self.history[stream] = append_points(
                            self.history.get(stream), view.history[i], view.history_length
                        )
                    self.scores[stream] = float(view.scores[i])
            results.append(ok)
        if view is not None:
            for field, amount in view.metrics:
                if field.startswith("="):
                    self.metrics[field[1:]] = amount
                elif field.startswith("^"):
                    old = self.metrics.get(field[1:])
                    if old is None or float(old) < float(amount):
                        self.metrics[field[1:]] = amount
                else:
                    self.metrics[field] = float(self.metrics.get(field, 0.0)) + float(amount)
            self.alerts.extend(view.alerts)
            del self.alerts[: max(0, len(self.alerts) - ALERTS_KEPT)]
        if view is not None:  # as in Redis: checkpoints (saves with a view) are counted
            client = self.generation.client
            self.generations[client] = self.generations.get(client, 0) + 1
            self.generation.check(self.generations[client], results)
        return results

    def save_peaks(self, peaks: dict[tuple[int, str], float], ttl_s: int) -> None:
        merge_peaks(self.peaks, peaks)

    def committed_marks(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        marks = {p: self.metrics.get(committed_field(topic, p)) for p in partitions}
        return {p: int(float(v)) for p, v in marks.items() if v is not None}

    def delete_all(self) -> None:
        self._states.clear()
        self._meta.clear()
        self.metrics.clear()

    def count(self) -> int:
        return len(self._states)

    def stored_bytes(self, stream: str) -> int:
        key = state_key(self.prefix, stream)
        blob = self._states.get(key)
        return 0 if blob is None else len(key.encode()) + len(blob)

    def set_meta(self, name: str, value: bytes) -> None:
        self._meta[meta_key(self.prefix, name)] = bytes(value)

    def get_meta(self, name: str) -> bytes | None:
        return self._meta.get(meta_key(self.prefix, name))

    def delete_meta(self, *names: str) -> None:
        for name in names:
            self._meta.pop(meta_key(self.prefix, name), None)
