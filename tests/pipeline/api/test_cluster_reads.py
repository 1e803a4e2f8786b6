"""The API over a Redis Cluster: a real worker writes to a 3-master cluster, and the
streams ranking, a stream's history and band, the alerts and the metrics read back as
they do from one Redis (deploy/README lists what does not work on a cluster yet)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipeline.api.app import create_app
from pipeline.local.stack import StackInfo
from tests.pipeline.api.conftest import (
    N_STREAMS,
    PER_STREAM,
    SPIKE_AT,
    TOKEN,
    module_settings,
    run_on_memory,
)
from tests.pipeline.kafka.helpers import sensor_events


@pytest.fixture(scope="module")
def client(stack: StackInfo, redis_cluster: str) -> Iterator[TestClient]:
    settings = module_settings(stack, api_token=TOKEN, history_length=PER_STREAM,
                               redis_url=redis_cluster)  # fmt: skip
    run_on_memory(settings, sensor_events(N_STREAMS, PER_STREAM, seed=3, spike_at=SPIKE_AT))
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def get(client: TestClient, path: str, **params: Any) -> Any:
    res = client.get(path, params=params)
    assert res.status_code == 200, res.text
    return res.json()


def test_streams_history_and_alerts_read_from_a_cluster(client: TestClient) -> None:
    ranked = get(client, "/streams", limit=100)["items"]
    assert len(ranked) == N_STREAMS
    alerts = get(client, "/alerts", limit=1000)["items"]
    assert alerts
    detail = get(client, f"/streams/{alerts[0]['stream']}", points=50)
    assert len(detail["points"]) == 50 and detail["alerts"]
    metrics = client.get("/metrics").text
    lines = set(metrics.splitlines())
    assert "vigil_redis_up 1" in lines
    assert f"vigil_records_total {N_STREAMS * PER_STREAM}" in lines, metrics
