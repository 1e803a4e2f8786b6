"""The per-poll record limit: the record cap until a cost is known, then the budget's worth."""

from __future__ import annotations

from pipeline.worker.budget import MIN_RECORDS, BatchBudget


def test_no_cost_yet_or_no_budget_means_the_record_cap() -> None:
    assert BatchBudget(50, 50_000).limit() == 50_000
    off = BatchBudget(0, 50_000)
    off.observe(10_000, 1.0)
    assert off.limit() == 50_000


def test_limit_is_the_budget_over_the_cost_per_record() -> None:
    budget = BatchBudget(50, 50_000)
    budget.observe(10_000, 0.1)  # 10 us per record
    assert budget.limit() == 5_000
    budget.observe(10_000, 0.05)  # cheaper: the smoothed cost moves a fifth of the way
    assert budget.limit() == int(0.05 / (0.8 * 1e-5 + 0.2 * 5e-6))  # 5,555


def test_limit_stays_between_the_floor_and_the_cap() -> None:
    slow = BatchBudget(50, 50_000)
    slow.observe(1_000, 10.0)
    assert slow.limit() == MIN_RECORDS
    fast = BatchBudget(50, 2_000)
    fast.observe(10_000, 0.001)
    assert fast.limit() == 2_000
    tiny_cap = BatchBudget(50, 10)
    tiny_cap.observe(10, 10.0)
    assert tiny_cap.limit() == 10


def test_small_batches_move_the_cost_less() -> None:
    budget = BatchBudget(50, 50_000)
    budget.observe(10_000, 0.1)
    budget.observe(5, 0.01)  # 2 ms per record, mostly fixed overhead
    assert budget.cost_s is not None and budget.cost_s < 2e-5
