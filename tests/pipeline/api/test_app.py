"""The HTTP API on data written by a real worker (real broker, real Redis, no mocks)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import torch
from fastapi.testclient import TestClient

from detectors.forecaster import Forecaster, ForecasterConfig
from pipeline.api.app import create_app
from pipeline.api.server import check_exposure, run_api
from pipeline.contracts.alerts import Alert, alert_id, iso_utc
from pipeline.models.registry import ModelRegistry
from pipeline.settings import Settings, SettingsError
from pipeline.state.base import alerts_key
from pipeline.state.redis import RedisStateStore
from tests.pipeline.api.conftest import N_STREAMS, TOKEN, live_server

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings), headers=AUTH) as c:
        yield c


def get(client: TestClient, path: str, **params: Any) -> Any:
    res = client.get(path, params=params)
    assert res.status_code == 200, res.text
    return res.json()


# --- auth -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/streams", "/alerts", "/models", "/metrics", "/readyz"])
def test_missing_or_wrong_token_is_refused(api_settings: Settings, path: str) -> None:
    with TestClient(create_app(api_settings)) as anonymous:
        missing = anonymous.get(path)
        wrong = anonymous.get(path, headers={"Authorization": "Bearer nope"})
    assert missing.status_code == 401
    assert "missing bearer token" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "wrong bearer token"


def test_healthz_and_dashboard_need_no_token(api_settings: Settings) -> None:
    with TestClient(create_app(api_settings)) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        page = anonymous.get("/")
        assert page.status_code == 200
        assert 'id="chart"' in page.text and "vendor/uplot/uPlot.iife.min.js" in page.text
        for name in ("core.js", "charts.js", "overview.js", "app.js", "vendor/uplot/LICENSE"):
            assert anonymous.get(f"/static/{name}").status_code == 200
        assert "/streams" in anonymous.get("/openapi.json").json()["paths"]


def test_no_token_configured_means_open(api_settings: Settings) -> None:
    with TestClient(create_app(api_settings.replace(api_token=""))) as anonymous:
        assert anonymous.get("/streams").status_code == 200


# --- streams --------------------------------------------------------------------------
def test_streams_page_most_anomalous_first(client: TestClient) -> None:
    seen: list[dict[str, Any]] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = get(client, "/streams", limit=3, offset=offset)
        assert page["total"] == N_STREAMS
        assert len(page["items"]) <= 3
        seen += page["items"]
        offset = page["next_offset"]
        pages += 1
    assert pages == 3
    assert sorted(s["stream"] for s in seen) == [f"s-{i:04d}" for i in range(N_STREAMS)]
    scores = [s["score"] for s in seen]
    assert scores == sorted(scores, reverse=True)
    assert all(s["count"] == 120 and s["last_ts_ms"] > 0 for s in seen)


def test_streams_filter_by_status_and_score(client: TestClient) -> None:
    everything = get(client, "/streams", limit=100)["items"]
    by_status: dict[str, set[str]] = {}
    for s in everything:
        by_status.setdefault(s["status"], set()).add(s["stream"])
    # 120 events each, past warm-up; the spike 20 minutes before the end is still in its
    # episode (alert_quiet_seconds) for the streams that alerted, the others are normal.
    assert set(by_status) == {"alerting", "normal"}, by_status
    for status in ("alerting", "normal", "warming"):
        page = get(client, "/streams", status=status, limit=100)
        assert {s["stream"] for s in page["items"]} == by_status.get(status, set())
        assert page["total"] is None
    middle = sorted(s["score"] for s in everything)[N_STREAMS // 2]
    high = get(client, "/streams", min_score=middle, limit=100)
    assert high["items"] and all(s["score"] >= middle for s in high["items"])
    low = get(client, "/streams", max_score=middle, limit=100)
    assert all(s["score"] <= middle for s in low["items"])
    assert high["total"] + low["total"] >= N_STREAMS


def test_status_filter_pages_do_not_overlap(client: TestClient) -> None:
    for status in ("alerting", "normal"):
        every = get(client, "/streams", status=status, limit=100)["items"]
        assert len(every) > 1, status
        first = get(client, "/streams", status=status, limit=1)
        assert first["next_offset"] == 1
        second = get(client, "/streams", status=status, limit=1, offset=1)
        assert [first["items"][0]["stream"], second["items"][0]["stream"]] == [
            s["stream"] for s in every[:2]
        ]


def test_unknown_stream_is_404(client: TestClient) -> None:
    res = client.get("/streams/no-such-stream")
    assert res.status_code == 404
    assert res.json()["detail"] == "unknown stream 'no-such-stream'"


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("/streams", {"limit": 0}, "query parameter 'limit'"),
        ("/streams", {"limit": "ten"}, "query parameter 'limit': Input should be a valid integer"),
        ("/streams", {"status": "sleepy"}, "query parameter 'status'"),
        ("/streams", {"min_score": 2}, "query parameter 'min_score'"),
        ("/streams/s-0000", {"points": -1}, "query parameter 'points'"),
        ("/alerts", {"since": "yesterday"}, "query parameter 'since'"),
        ("/alerts", {"limit": 100000}, "query parameter 'limit'"),
    ],
)
def test_bad_parameters_are_422_with_a_message(
    client: TestClient, path: str, params: dict[str, Any], fragment: str
) -> None:
    res = client.get(path, params=params)
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    assert fragment in detail


def test_invalid_stream_id_is_422(client: TestClient) -> None:
    res = client.get("/streams/" + "x" * 300)
    assert res.status_code == 422
    assert "at most 200 characters" in res.json()["detail"]
    assert client.get("/streams/a%01b").status_code == 422  # a control character


def test_an_empty_score_range_is_an_empty_page(client: TestClient) -> None:
    page = get(client, "/streams", min_score=0.9, max_score=0.1)
    assert page["items"] == [] and page["total"] == 0


def test_stream_detail_has_values_predictions_band_and_alerts(client: TestClient) -> None:
    alerting = get(client, "/alerts", limit=1)["items"][0]["stream"]
    detail = get(client, f"/streams/{alerting}", points=50)
    assert detail["features"] == ["value"]
    points = detail["points"]
    assert len(points) == 50
    assert [p["ts_ms"] for p in points] == sorted(p["ts_ms"] for p in points)
    banded = [p for p in points if p["lower"]["value"] is not None]
    assert len(banded) >= 40
    for p in banded:
        assert p["lower"]["value"] <= p["expected"]["value"] <= p["upper"]["value"]
    assert detail["alerts"] and all(a["stream"] == alerting for a in detail["alerts"])
    flagged = {p["ts_ms"] for p in get(client, f"/streams/{alerting}", points=1000)["points"]
               if p["alert"]}  # fmt: skip
    assert {a["ts_ms"] for a in detail["alerts"]} <= flagged
    spike = [p for p in points if p["alert"]]
    if spike:  # the spike sits far outside the band the earlier errors set
        assert spike[0]["values"]["value"] > spike[0]["upper"]["value"]


# --- alerts ---------------------------------------------------------------------------
def test_alerts_newest_first_and_filters(client: TestClient) -> None:
    everything = get(client, "/alerts", limit=1000)
    items = everything["items"]
    assert everything["count"] == len(items) > 0
    cursors = [tuple(map(int, a["cursor"].split("-"))) for a in items]
    assert cursors == sorted(cursors, reverse=True)
    Alert.from_json(json.dumps({k: v for k, v in items[0].items() if k != "cursor"}))
    stream = items[0]["stream"]
    assert {a["stream"] for a in get(client, "/alerts", stream=stream)["items"]} == {stream}
    top = max(a["score"] for a in items)
    assert all(a["score"] >= top for a in get(client, "/alerts", min_score=top)["items"])
    latest = max(a["ts_ms"] for a in items)
    since = datetime.fromtimestamp(latest / 1000, tz=timezone.utc)
    recent = get(client, "/alerts", since=since.isoformat())["items"]
    assert recent and all(a["ts_ms"] >= latest for a in recent)
    later = (since + timedelta(days=1)).isoformat()
    assert get(client, "/alerts", since=later)["items"] == []
    assert len(get(client, "/alerts", limit=2)["items"]) == min(2, len(items))


def _inject_alert(settings: Settings, stream: str, ts_ms: int) -> None:
    alert = Alert(
        id=alert_id(stream, ts_ms), stream=stream, ts=iso_utc(ts_ms), ts_ms=ts_ms, score=0.99,
        values={"value": 1e6}, expected={"value": 1.0}, top_feature="value",
        model_version="test", detector="test", meta={}, partition=0, offset=0,
    )  # fmt: skip
    client = redis.Redis.from_url(settings.redis_address())
    client.xadd(alerts_key(settings.redis_prefix), {"alert": alert.to_json()})
    client.close()


def test_live_feed_delivers_an_alert_injected_after_connecting(api_settings: Settings) -> None:
    app = create_app(api_settings)
    with (
        live_server(app) as base,
        httpx.Client(base_url=base, headers=AUTH, timeout=30) as http,
        http.stream("GET", "/alerts/live", params={"stream": "injected"}) as res,
    ):
        assert res.status_code == 200
        assert res.headers["content-type"].startswith("text/event-stream")
        lines = res.iter_lines()
        assert next(lines) == "retry: 3000"  # connected: the start id is resolved
        threading.Timer(0.3, _inject_alert, (api_settings, "injected", 1_900_000_000_000)).start()
        event: dict[str, str] = {}
        for line in lines:
            if not line:
                if "data" in event:
                    break
                continue
            name, _, value = line.partition(": ")
            event[name] = value
    assert event["event"] == "alert"
    body = json.loads(event["data"])
    assert body["stream"] == "injected"
    assert body["score"] == 0.99
    assert event["id"] == body["cursor"]


def test_live_feed_refuses_a_malformed_last_event_id(client: TestClient) -> None:
    res = client.get("/alerts/live", headers={"Last-Event-ID": "yesterday"})
    assert res.status_code == 422
    assert "Last-Event-ID" in res.json()["detail"]


# --- models, health, metrics ----------------------------------------------------------
def test_models_come_from_the_registry(api_settings: Settings, tmp_path: Path) -> None:
    settings = api_settings.replace(model_dir=str(tmp_path / "models"), model_poll_seconds=0)
    store = RedisStateStore(redis.Redis.from_url(settings.redis_address()), settings.redis_prefix)
    registry = ModelRegistry(settings, store)
    shipped = registry.shipped_id()
    try:
        with TestClient(create_app(settings), headers=AUTH) as c:
            before = get(c, "/models")
            assert (before["live"], before["serving"]) == (None, shipped)
            assert [(v["version"], v["source"], v["live"]) for v in before["versions"]] == [
                (shipped, "shipped", True)
            ]
            torch.manual_seed(1)
            model = Forecaster(ForecasterConfig())
            vid = registry.register(model, window={}, metrics={}, device="cpu", parent=None).id
            registry.promote(vid)
            after = get(c, "/models")
            assert after["live"] == after["serving"] == vid  # states decode with the live one
            assert [(v["version"], v["source"], v["live"]) for v in after["versions"]] == [
                (vid, "registry", True),
                (shipped, "shipped", False),
            ]
            newest = after["versions"][0]
            assert (newest["kind"], newest["hidden_size"]) == ("gru", 64)
            assert newest["sha256"] == registry.get(vid).sha256
            assert get(c, "/readyz")["checks"]["model"] == "ok"
        # The live version's weights no longer verify: an API starting now is not ready.
        (tmp_path / "models" / vid / "weights.pt").write_bytes(b"not the weights")
        with TestClient(create_app(settings), headers=AUTH) as c:
            res = c.get("/readyz")
        assert res.status_code == 503
        assert "does not match the recorded" in res.json()["checks"]["model"]
    finally:
        store.client.delete(*store.client.keys(f"{settings.redis_prefix}:m:*"))
        store.client.close()


def test_readyz_reports_each_dependency(client: TestClient, api_settings: Settings) -> None:
    ok = client.get("/readyz")
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"ready": True, "checks": {"redis": "ok", "broker": "ok", "model": "ok"}}
    broken = api_settings.replace(bootstrap_servers="127.0.0.1:1", redis_url="redis://127.0.0.1:1")
    with TestClient(create_app(broken), headers=AUTH) as c:
        res = c.get("/readyz")
    assert res.status_code == 503
    checks = res.json()["checks"]
    assert checks["redis"] != "ok" and checks["broker"] != "ok"
    assert "Redis unavailable" in checks["model"]  # the live version is named in Redis


def test_readyz_stays_ready_without_the_broker(api_settings: Settings) -> None:
    """The API serves from Redis: Kafka down is reported, not a reason to leave the Service."""
    no_broker = api_settings.replace(bootstrap_servers="127.0.0.1:1")
    with TestClient(create_app(no_broker), headers=AUTH) as c:
        res = c.get("/readyz")
    assert res.status_code == 200, res.text
    assert res.json()["ready"] is True and res.json()["checks"]["broker"] != "ok"


def test_redis_down_is_503_not_a_traceback(api_settings: Settings) -> None:
    broken = api_settings.replace(redis_url="redis://127.0.0.1:1")
    with TestClient(create_app(broken), headers=AUTH) as c:
        res = c.get("/streams")
        metrics = c.get("/metrics")
    assert res.status_code == 503
    assert res.json()["detail"].startswith("Redis unavailable")
    assert "vigil_redis_up 0" in metrics.text


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_metrics_expose_worker_counters(client: TestClient) -> None:
    res = client.get("/metrics")
    assert res.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(res.text)
    assert samples["vigil_redis_up"] == 1
    assert samples["vigil_streams"] == N_STREAMS
    assert samples["vigil_records_total"] == N_STREAMS * 120
    assert samples["vigil_events_applied_total"] == N_STREAMS * 120
    # kept >= total: the live-feed test injects an alert straight into Redis
    assert 0 < samples["vigil_alerts_total"] <= samples["vigil_alerts_kept"]
    batches = samples["vigil_batch_duration_seconds_count"]
    assert samples['vigil_batch_duration_seconds_bucket{le="+Inf"}'] == batches > 0
    assert "# TYPE vigil_batch_duration_seconds histogram" in res.text
    assert any(k.startswith("vigil_model_info{version=") for k in samples)


# --- the server -----------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::", "api.example.com"])
def test_server_refuses_an_open_host_without_a_token(api_settings: Settings, host: str) -> None:
    open_settings = api_settings.replace(api_token="")
    with pytest.raises(SettingsError, match="without a token"):
        run_api(open_settings, host=host, port=1)
    check_exposure(api_settings, host)  # with a token it may listen anywhere


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_needs_no_token(api_settings: Settings, host: str) -> None:
    check_exposure(api_settings.replace(api_token=""), host)
