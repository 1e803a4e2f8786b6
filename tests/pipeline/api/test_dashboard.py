"""The dashboard in headless Chromium against a real worker, broker and Redis.

The page loads, lists the streams, opens one and draws its chart; then the test sends a
spike for that stream through Kafka, a real worker turns it into an alert, and the page
shows it in the live feed and as a marker on the chart. The screenshot is kept in
test-artifacts/dashboard.png.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from pipeline.api.app import create_app
from pipeline.contracts.events import encode_event
from pipeline.local.stack import StackInfo
from pipeline.worker.wiring import create_topics
from tests.pipeline.api.conftest import TOKEN, live_server, module_settings, run_worker
from tests.pipeline.kafka.helpers import produce, sensor_events

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
STREAMS, STEPS, T0 = 6, 100, 1_763_700_000_000
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium package is needed (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


def red_pixels(page: Page, selector: str) -> int:
    """Pixels of the alert colour (#ff5d6c) on a canvas: the chart's alert markers."""
    return int(
        page.eval_on_selector(
            selector,
            """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      let n = 0;
                      const near = (a, b) => Math.abs(a - b) < 16;
                      for (let i = 0; i < d.length; i += 4)
                        if (d[i] > 240 && near(d[i+1], 93) && near(d[i+2], 108)) n++;
                      return n; }""",
        )
    )


def drawn_pixels(page: Page, selector: str) -> int:
    return int(
        page.eval_on_selector(
            selector,
            """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                      return n; }""",
        )
    )


def test_dashboard_shows_streams_chart_and_a_live_alert(stack: StackInfo, browser: Browser) -> None:
    settings = module_settings(stack, api_token=TOKEN, history_length=STEPS)
    create_topics(settings)
    events = sensor_events(STREAMS, STEPS, seed=5, spike_at=None)
    produce(settings.bootstrap_servers, settings.events_topic, events)
    run_worker(settings, len(events))

    with live_server(create_app(settings)) as base:
        page = browser.new_page(viewport={"width": 1440, "height": 860})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/#token={TOKEN}")

        rows = page.locator("#stream-list .stream-row")
        expect(rows).to_have_count(STREAMS)
        expect(page.locator("#models .model.live")).to_contain_text("generic-gru-h64-")
        expect(page.locator("#live")).not_to_have_class("live off")

        page.locator('.stream-row[data-stream="s-0002"]').click()
        expect(page.locator("#d-name")).to_have_text("s-0002")
        expect(page.locator("#d-status")).to_have_text("normal")
        assert drawn_pixels(page, "#chart canvas") > 5000
        assert red_pixels(page, "#chart canvas") == 0

        # The injected anomaly: one spiked reading, through Kafka and a real worker.
        spike = encode_event("s-0002", T0 + STEPS * 60_000, 10_000.0)
        produce(settings.bootstrap_servers, settings.events_topic, [(b"s-0002", spike)])
        run_worker(settings, 1)

        feed = page.locator("#feed .alert-item")
        expect(feed.first).to_contain_text("s-0002", timeout=15_000)
        expect(page.locator("#d-alerts .alert-item").first).to_contain_text("s-0002")
        expect(page.locator("#d-status")).to_have_text("incident ongoing")
        expect(rows.first).to_have_attribute("data-stream", "s-0002")  # now the most anomalous
        assert red_pixels(page, "#chart canvas") > 20

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        page.close()
        assert errors == []
