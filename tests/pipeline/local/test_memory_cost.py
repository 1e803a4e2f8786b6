"""The per-stream memory report measures what it names: every cache grows with the id."""

from __future__ import annotations

from pipeline.local.memory_cost import per_stream


def test_each_cache_costs_more_per_stream_for_longer_ids() -> None:
    short, long = per_stream(12, n=5000), per_stream(200, n=5000)
    assert set(short) == set(long) and len(short) == 3
    for name, cost in short.items():
        assert 50 < cost < long[name] < 2000, name
        assert long[name] - cost > 150  # ~188 more characters are stored at least once
