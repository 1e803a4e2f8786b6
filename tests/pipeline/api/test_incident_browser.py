"""An incident seen through the dashboard, in headless Chromium, on a real worker, broker
and Redis: a latency stream jumps from ~120 to ~430 ms for 40 minutes, longer than the
detector takes to adapt to it (its score falls back within minutes).

The episode opens and the page shows it as ongoing while the score is already low;
after the incident it resolves; afterwards the stream is found by the time-range
ranking (it ranks low by latest score) and by searching its id and its meta; the reason
is shown; an acknowledgement and a false-positive mark round-trip through the API.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from pipeline.api.app import create_app
from pipeline.contracts.events import encode_event
from pipeline.local.stack import StackInfo
from pipeline.settings import Settings
from pipeline.worker.wiring import create_topics
from tests.pipeline.api.conftest import TOKEN, live_server, module_settings, run_worker
from tests.pipeline.api.test_dashboard import ARTIFACTS, browser  # noqa: F401 (fixture)
from tests.pipeline.kafka.helpers import produce

T0 = 1_763_700_000_000
MINUTE = 60_000
INCIDENT = range(200, 240)  # minutes: 40 minutes at ~430 ms
SPLIT, END = 225, 300  # phase 1 stops mid-incident; phase 2 runs on to END
TARGET = "lat-07"
OTHERS = [f"lat-{i:02d}" for i in range(20) if i != 7]


def latency_events(first: int, last: int) -> list[tuple[bytes, bytes]]:
    """Minutes [first, last) of p99 latency for 20 services; TARGET has the incident."""
    out = []
    for step in range(first, last):
        for k, stream in enumerate([TARGET, *OTHERS]):
            rng = np.random.default_rng(step * 100 + k)
            value = 120 + 10 * math.sin(step / 30 + k) + rng.normal(0, 4)
            if stream == TARGET and step in INCIDENT:
                value = 430 + rng.normal(0, 12)
            meta = {"service": "checkout" if stream == TARGET else f"svc-{k}", "region": "eu-west"}
            body = encode_event(stream, T0 + step * MINUTE, {"p99_ms": round(value, 2)}, **meta)
            out.append((stream.encode(), body))
    return out


@pytest.fixture(scope="module")
def settings(stack: StackInfo) -> Settings:
    s = module_settings(stack, api_token=TOKEN, alert_quiet_seconds=1800, history_length=400,
                        peak_bucket_seconds=600)  # fmt: skip
    create_topics(s)
    return s


def feed(settings: Settings, first: int, last: int) -> None:
    events = latency_events(first, last)
    produce(settings.bootstrap_servers, settings.events_topic, events)
    run_worker(settings, len(events))


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@pytest.fixture(scope="module")
def base(settings: Settings) -> Iterator[str]:
    with live_server(create_app(settings)) as url:
        yield url


def test_an_incident_opens_stays_ongoing_resolves_and_is_found(
    settings: Settings,
    base: str,
    browser: Browser,  # noqa: F811 (the fixture)
) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Phase 1: up to 25 minutes into the incident. The detector has adapted (the score is
    # low again), but the episode is still open, and the page says so.
    feed(settings, 0, SPLIT)
    page.goto(f"{base}/#token={TOKEN}&stream={TARGET}")
    expect(page.locator("#d-name")).to_have_text(TARGET)
    expect(page.locator("#d-status")).to_have_text("incident ongoing")
    ongoing = page.locator(f'#episodes .episode[data-stream="{TARGET}"]')
    expect(ongoing.first.locator(".state")).to_have_text("ongoing")
    score = float(page.locator("#d-stats b").first.inner_text())
    assert score < 0.5  # the point: the score fell, the incident did not end
    expect(page.locator("#d-reason")).to_contain_text("p99_ms is")
    expect(page.locator("#d-evidence")).to_contain_text("usual band")
    expect(page.locator("#d-meta")).to_contain_text("service=checkout")
    shot(page, "incident-ongoing.png")

    # Phase 2: the incident ends and an hour of normal traffic follows: resolved.
    feed(settings, SPLIT, END)
    page.reload()
    expect(page.locator("#d-status")).not_to_have_text("incident ongoing", timeout=15_000)
    resolved = page.locator(f'#episodes .episode.resolved[data-stream="{TARGET}"]')
    expect(resolved.first.locator(".state")).to_have_text("resolved")
    episode_id = resolved.first.get_attribute("data-episode")
    assert episode_id

    # Found afterwards by the time-range ranking, though its latest score ranks it low.
    window = f"from={T0 + 190 * MINUTE}&to={T0 + 250 * MINUTE}"
    page.goto(f"{base}/#{window}")
    expect(page.locator("#ranking .stream-row").first).to_have_attribute("data-stream", TARGET)
    expect(page.locator("#lanes .lane").first).to_have_attribute("data-stream", TARGET)
    now_rank = page.locator("#stream-list .stream-row").evaluate_all(
        "rows => rows.map(r => r.dataset.stream)"
    )
    assert now_rank.index(TARGET) > 0  # by latest score it is not the first
    shot(page, "incident-found-by-range.png")

    # ... by its id, and by its meta.
    page.fill("#search", TARGET)
    expect(page.locator("#search-streams .stream-row").first).to_have_attribute(
        "data-stream", TARGET
    )
    page.fill("#search", "service=checkout")
    found = page.locator("#search-episodes .episode")
    expect(found.first).to_have_attribute("data-stream", TARGET)
    assert set(found.evaluate_all("xs => xs.map(x => x.dataset.stream)")) == {TARGET}

    # The reason, and labels that round-trip through the API.
    page.fill("#search", "")
    found_episode = page.locator(f'#episodes .episode[data-episode="{episode_id}"]')
    found_episode.click()
    expect(page.locator("#d-name")).to_have_text(TARGET)
    expect(page.locator("#d-reason")).to_contain_text("expected")
    found_episode.locator(".ack").click()
    expect(found_episode.locator(".label")).to_contain_text("acked by dashboard")
    page.once("dialog", lambda d: d.accept("load test, not an incident"))
    page.locator(f'#episodes .episode[data-episode="{episode_id}"] .fp').click()
    expect(page.locator(f'#episodes .episode[data-episode="{episode_id}"] .label')).to_contain_text(
        "false positive"
    )
    label = httpx.get(f"{base}/episodes/{episode_id}",
                      headers={"Authorization": f"Bearer {TOKEN}"}).json()["label"]  # fmt: skip
    assert label["acknowledged_by"] == "dashboard"
    assert label["false_positive"] is True and label["note"] == "load test, not an incident"
    shot(page, "incident-labelled.png")
    page.locator("#d-silence").click()
    expect(page.locator("#toast")).to_contain_text(f"{TARGET} silenced until")
    silences = httpx.get(f"{base}/silences", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert [s["stream"] for s in silences["items"]] == [TARGET]

    # At 800 px the panels stack and the chart keeps its width.
    page.set_viewport_size({"width": 800, "height": 900})
    page.wait_for_timeout(400)
    width = page.locator("#chart canvas").first.evaluate("c => c.getBoundingClientRect().width")
    assert width > 600
    shot(page, "incident-800px.png")
    page.close()
    assert errors == []
