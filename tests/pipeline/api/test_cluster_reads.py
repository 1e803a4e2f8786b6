"""The API over a Redis Cluster: a real worker writes to a 3-master cluster, and the
streams ranking, a stream's history and band, the alerts and the metrics read back as
they do from one Redis, and the writes that span slots (labels, silences, a reset) work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipeline.api.app import create_app
from pipeline.local.stack import StackInfo
from pipeline.state.base import state_key
from pipeline.state.cluster import connect_cluster
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


def test_labels_silences_and_a_stream_reset_work_on_a_cluster(
    client: TestClient, redis_cluster: str
) -> None:
    """The writes that span several slots: a label (hash + time index), a silence, and a
    reset (marker and history in the stream's slot, ranking and notice elsewhere)."""
    episode = get(client, "/episodes", limit=10)["items"][0]
    acked = client.post(f"/episodes/{episode['id']}/ack", json={"by": "ops", "note": "seen"})
    assert acked.status_code == 200, acked.text
    marked = client.post(f"/episodes/{episode['id']}/false-positive", json={"by": "ops"})
    assert marked.status_code == 200, marked.text
    [label] = get(client, "/labels")
    assert label["episode"] == episode["id"] and label["false_positive"] is True
    assert label["acknowledged_by"] == "ops"

    made = client.post("/silences", json={"kind": "pattern", "value": "s-*", "duration_s": 60})
    assert made.status_code == 201, made.text
    assert [s["id"] for s in get(client, "/silences")["items"]] == [made.json()["id"]]
    assert client.delete(f"/silences/{made.json()['id']}").status_code in (200, 204)
    assert get(client, "/silences")["items"] == []

    stream = episode["stream"]
    reset = client.post(f"/streams/{stream}/reset")
    assert reset.status_code == 200, reset.text
    assert get(client, f"/streams/{stream}")["count"] == 0
    ranked = {item["stream"] for item in get(client, "/streams", limit=100)["items"]}
    assert stream not in ranked and len(ranked) == N_STREAMS - 1
    prefix = client.app.state.context.settings.redis_prefix  # type: ignore[attr-defined]
    stored = connect_cluster(redis_cluster).get(state_key(prefix, stream))
    assert stored is not None and len(stored) == 16  # the reset marker: header only
