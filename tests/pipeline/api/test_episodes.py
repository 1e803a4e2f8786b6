"""Episodes, labels and silences through the API, on alerts of a real worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from pipeline.api.app import create_app
from pipeline.cli.main import main
from pipeline.contracts.events import encode_event
from pipeline.local.stack import StackInfo
from pipeline.settings import Settings
from pipeline.state.labels import SilenceCache
from tests.pipeline.api.conftest import TOKEN, module_settings, run_on_memory
from tests.pipeline.kafka.helpers import sensor_events

VIEWER = "viewer-token-456"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
READ = {"Authorization": f"Bearer {VIEWER}"}
T0 = 1_763_700_000_000


@pytest.fixture(scope="module")
def settings(stack: StackInfo) -> Settings:
    """Six streams, one spike each at minute 90, episodes resolved after 10 quiet minutes;
    streams 4 and 5 get a second spike at minute 125, whose episodes are still open."""
    s = module_settings(stack, api_token=TOKEN, api_viewer_token=VIEWER, alert_quiet_seconds=600)
    events = [
        _second_spike(key, value) for key, value in sensor_events(6, 130, seed=5, spike_at=90)
    ]
    run_on_memory(s, events)
    return s


def _second_spike(key: bytes, value: bytes) -> tuple[bytes, bytes]:
    body = json.loads(value)
    if key in (b"s-0004", b"s-0005") and body["ts"] == T0 + 125 * 60_000:
        return key, encode_event(key.decode(), body["ts"], body["value"] * 1000)
    return key, value


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=READ) as c:
        yield c


def episodes(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    res = client.get("/episodes", params=params)
    assert res.status_code == 200, res.text
    items: list[dict[str, Any]] = res.json()["items"]
    return items


def test_episodes_show_state_peak_and_reason(client: TestClient) -> None:
    resolved = episodes(client, state="resolved")
    assert len(resolved) >= 5
    first = resolved[-1]
    assert first["duration_s"] >= 0 and first["peak"] >= 0.5
    assert first["reason"].startswith("value is") and first["label"] is None
    firing = episodes(client, state="firing")
    assert {e["stream"] for e in firing} <= {"s-0004", "s-0005"} and firing
    one = client.get(f"/episodes/{first['id']}").json()
    assert one["id"] == first["id"] and one["stream"] == first["stream"]


def test_ack_and_false_positive_round_trip_and_need_the_admin_token(client: TestClient) -> None:
    target = episodes(client, state="resolved")[0]
    url = f"/episodes/{target['id']}"
    assert client.post(f"{url}/ack", json={"by": "ana"}).status_code == 401  # viewer token
    res = client.post(f"{url}/ack", json={"by": "ana", "note": "looking"}, headers=ADMIN)
    assert res.status_code == 200, res.text
    assert res.json()["acknowledged_by"] == "ana"
    res = client.post(f"{url}/false-positive", json={"note": "deploy"}, headers=ADMIN)
    assert res.json()["false_positive"] is True and res.json()["acknowledged_by"] == "ana"
    label = client.get(url).json()["label"]
    assert (label["false_positive"], label["note"]) == (True, "deploy")
    assert [x["episode"] for x in client.get("/labels").json()] == [target["id"]]


def test_unknown_episodes_and_bad_ids_are_clear_errors(client: TestClient) -> None:
    res = client.post(f"/episodes/{'0' * 32}/ack", json={}, headers=ADMIN)
    assert res.status_code == 404 and "no episode" in res.json()["detail"]
    assert client.get("/episodes/not-an-id").status_code == 422
    assert client.get("/episodes", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_silences_are_created_listed_matched_and_removed(
    client: TestClient, settings: Settings
) -> None:
    res = client.post("/silences", json={"kind": "pattern", "value": "s-000*", "duration_s": 60},
                      headers=ADMIN)  # fmt: skip
    assert res.status_code == 201, res.text
    silence = res.json()
    assert [s["id"] for s in client.get("/silences").json()["items"]] == [silence["id"]]
    cache = SilenceCache(redis.Redis.from_url(settings.redis_address()), settings.redis_prefix)
    assert cache("s-0003") and not cache("t-0003")
    unknown = {"kind": "regex", "value": "b*", "duration_s": 5}
    assert client.post("/silences", json=unknown, headers=ADMIN).status_code == 422
    assert client.post("/silences", json={"kind": "stream", "value": "a", "duration_s": -1},
                       headers=ADMIN).status_code == 422  # fmt: skip
    assert client.delete(f"/silences/{silence['id']}", headers=ADMIN).status_code == 204
    assert client.delete(f"/silences/{silence['id']}", headers=ADMIN).status_code == 404
    assert client.get("/silences").json()["items"] == []


def test_labels_export_writes_labelled_data(
    client: TestClient, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = episodes(client, state="resolved")[1]
    client.post(f"/episodes/{target['id']}/false-positive", json={"false_positive": False},
                headers=ADMIN)  # fmt: skip
    out = tmp_path / "labels.jsonl"
    argv = ["labels", "export", "--redis-url", settings.redis_address(), "--out", str(out)]
    monkeypatch.setenv("VIGIL_REDIS_PREFIX", settings.redis_prefix)
    assert main(argv) == 0
    rows = {r["episode"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows[target["id"]]["label"] == "true_positive"
    assert rows[target["id"]]["stream"] == target["stream"]


def test_labels_export_to_a_missing_folder_is_one_line(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["labels", "export", "--redis-url", settings.redis_address(), "--out", "/nonexistent/x"]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("vigil: cannot write")


def test_streams_are_ranked_by_their_peak_in_a_time_range(client: TestClient) -> None:
    span = {"from_ms": T0, "to_ms": T0 + 130 * 60_000}
    ranking = client.get("/incidents/ranking", params=span).json()
    assert {r["stream"] for r in ranking["items"]} == {f"s-{i:04d}" for i in range(6)}
    assert all(r["peak"] >= 0.5 for r in ranking["items"])
    before = client.get(
        "/incidents/ranking", params={"from_ms": T0 - 5 * 3_600_000, "to_ms": T0 - 3_600_000}
    )
    assert before.json()["items"] == []
    lanes = client.get("/incidents/lanes", params={**span, "limit": 3}).json()
    assert len(lanes["lanes"]) == 3 and len(lanes["buckets"]) >= 3
    lane = lanes["lanes"][0]
    assert len(lane["peaks"]) == len(lanes["buckets"])
    assert max(p for p in lane["peaks"] if p is not None) == lane["peak"]
    huge = client.get("/incidents/lanes", params={"from_ms": 0, "to_ms": T0 + 130 * 60_000})
    assert len(huge.json()["buckets"]) == 2000  # the latest 2000 buckets of a longer range
    assert huge.json()["lanes"][0]["peak"] == lanes["lanes"][0]["peak"]
    backwards = client.get("/incidents/ranking", params={"from_ms": T0, "to_ms": T0 - 1})
    assert backwards.json()["items"] == []


def test_cursor_pages_neither_repeat_nor_skip_while_scores_move(
    client: TestClient, settings: Settings
) -> None:
    r = redis.Redis.from_url(settings.redis_address())
    key = f"{settings.redis_prefix}:scores"
    streams = {m.decode() for m in r.zrange(key, 0, -1)}
    seen: list[str] = []
    cursor = "start"
    while cursor:
        page = client.get("/streams", params={"cursor": cursor, "limit": 2}).json()
        seen += [s["stream"] for s in page["items"]]
        # data flows: the page's streams jump to the top, a new stream appears
        r.zadd(key, {s["stream"]: 1.0 for s in page["items"]} | {f"new-{len(seen)}": 0.99})
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(streams)
    found = client.get("/streams", params={"q": "0003"}).json()["items"]
    assert [s["stream"] for s in found] == ["s-0003"]
    expired = client.get("/streams", params={"cursor": "0" * 32 + ":2"})
    assert expired.status_code == 404 and "cursor=start" in expired.json()["detail"]


def test_episodes_are_found_by_meta_and_stream(client: TestClient) -> None:
    assert {e["stream"] for e in episodes(client, q="s-0002")} == {"s-0002"}
    assert episodes(client, q="no-such-thing") == []
