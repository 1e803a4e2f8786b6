"""The two HTTP sinks: Prometheus Alertmanager (API v2) and a generic JSON webhook.

Alertmanager identifies an alert by its label set, so every alert of an episode has the
same labels (`alertname`, `stream`, `episode`); a firing alert is posted without
`endsAt` and re-posted every `resend_s` while its episode is open (Alertmanager resolves
an alert it has not heard of for its `resolve_timeout`, as with Prometheus), and the
episode's resolve is posted with `endsAt`. The open episodes live in this process only:
after a worker restart they are not re-posted, so Alertmanager resolves them on its own
until the episode's next alert.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from pipeline.contracts.alerts import Alert, iso_utc

ALERTNAME = "VigilAnomaly"
MAX_OPEN = 10_000


def alertmanager_body(alert: Alert, dashboard_url: str = "") -> dict[str, Any]:
    """One postable alert of the Alertmanager v2 API for a Vigil alert."""
    episode = alert.episode
    labels = {
        "alertname": ALERTNAME,
        "stream": alert.stream,
        "episode": episode.id if episode is not None else alert.id,
        "severity": "warning",
    }
    reason = alert.reason
    annotations = {
        "summary": f"{alert.stream}: {reason.text}" if reason else f"{alert.stream} anomalous",
        "score": f"{alert.score:.3f}",
        "peak_score": f"{episode.peak:.3f}" if episode else f"{alert.score:.3f}",
        "evidence": reason.fired if reason else alert.top_feature,
        "alert_id": alert.id,
    }
    if alert.meta:
        annotations["meta"] = json.dumps(alert.meta, separators=(",", ":"))[:1000]
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": iso_utc(episode.start_ms if episode else alert.ts_ms),
    }
    if alert.state == "resolved":
        body["endsAt"] = iso_utc(alert.ts_ms)
    if dashboard_url:
        body["generatorURL"] = f"{dashboard_url.rstrip('/')}/#stream={alert.stream}"
    return body


class AlertmanagerSink:
    name = "alertmanager"

    def __init__(
        self, url: str, timeout_s: float = 5.0, resend_s: float = 60.0, dashboard_url: str = ""
    ) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.resend_s = resend_s
        self.dashboard_url = dashboard_url
        self._client = httpx.Client(timeout=timeout_s)
        self._open: dict[str, dict[str, Any]] = {}  # episode -> its latest firing body
        self._lock = threading.Lock()
        self._last_resend = time.monotonic()

    def _post(self, bodies: list[dict[str, Any]]) -> None:
        self._client.post(self.url, json=bodies).raise_for_status()

    def deliver(self, alert: Alert) -> None:
        body = alertmanager_body(alert, self.dashboard_url)
        self._post([body])
        episode = body["labels"]["episode"]
        with self._lock:
            if alert.state == "resolved":
                self._open.pop(episode, None)
            else:
                self._open[episode] = body
                while len(self._open) > MAX_OPEN:
                    self._open.pop(next(iter(self._open)))

    def tick(self) -> None:
        if time.monotonic() - self._last_resend < self.resend_s:
            return
        self._last_resend = time.monotonic()
        with self._lock:
            bodies = list(self._open.values())
        if bodies:
            self._post(bodies)


class WebhookSink:
    """POSTs the alert's JSON (the Kafka record's body) to one URL; the `Idempotency-Key`
    header is the alert id, so a receiver can drop the copies retries and replays make."""

    name = "webhook"

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout_s)

    def deliver(self, alert: Alert) -> None:
        headers = {"Content-Type": "application/json", "Idempotency-Key": alert.id}
        self._client.post(self.url, content=alert.to_json(), headers=headers).raise_for_status()

    def tick(self) -> None:
        return None
