"""How many records the next poll may take: a time budget beside the record cap.

A poll returns what has been fetched, so under light load batches are small and quick.
After a pause (a checkpoint save, a rebalance, a burst) the backlog can be tens of
thousands of records, and one batch that size holds every alert in it for as long as the
whole batch takes. So the worker learns what a record costs it (seconds per record of
its recent batches, smoothed) and takes at most `batch_budget_ms` worth per poll: large
batches under heavy load, where the per-batch overhead matters, but never one that
outlasts the budget. 0 turns the budget off (only `max_poll_records` bounds a batch).

Off by default: smaller batches pay the per-batch overhead more often. Well below the
worker's capacity a budget trims the tail a little; near it, the worker can no longer
catch up with a backlog in large batches and the tail grows (`vigil bench` with
VIGIL_BATCH_BUDGET_MS set shows which on the hardware at hand).
"""

from __future__ import annotations

MIN_RECORDS = 500
"""Never fewer per poll: below this the per-batch overhead dominates the cost."""
SMOOTHING = 0.2
"""Weight of the newest batch in the running cost per record."""


class BatchBudget:
    """The record limit for the next poll, from the cost of the batches so far."""

    def __init__(self, budget_ms: int, max_records: int) -> None:
        self.budget_s = budget_ms / 1000.0
        self.max_records = max_records
        self.cost_s: float | None = None  # smoothed seconds per record

    def limit(self) -> int:
        if self.budget_s <= 0 or self.cost_s is None:
            return self.max_records
        fits = int(self.budget_s / max(self.cost_s, 1e-9))
        return max(min(fits, self.max_records), min(MIN_RECORDS, self.max_records))

    def observe(self, records: int, seconds: float) -> None:
        """Learn from a processed batch (records > 0); small batches count less, since
        their fixed overhead says little about a large batch's cost per record."""
        if records <= 0:
            return
        cost = seconds / records
        weight = SMOOTHING * min(1.0, records / MIN_RECORDS)
        self.cost_s = cost if self.cost_s is None else (1 - weight) * self.cost_s + weight * cost
