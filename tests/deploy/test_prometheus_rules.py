"""The shipped Prometheus alert rules: loaded by the config, about metrics Vigil serves,
and combining the API's replica-identical totals with max (never sum)."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from pipeline.api.lag import render_lag
from pipeline.api.metrics import render_metrics
from pipeline.worker.health import WorkerCollector
from tests.deploy.manifests import ROOT

DEPLOY = ROOT / "deploy"
FIELDS = {"batch_le_0.1": "1", "batches": "1", "deadletter:bad_json": "1", "model_version": "v",
          "trainer_last_success_s": "1700000000"}  # fmt: skip


class _Stats:
    def __getattr__(self, name: str) -> Any:
        return {"deadletters": {}, "batch_buckets": [0] * 11}.get(name, 0)


class _Worker:
    stats = _Stats()
    senders: tuple[Any, ...] = ()


def served() -> set[str]:
    text = render_metrics(FIELDS, 1, 1, True) + render_lag({("t", 0): 1}, "g")
    registry = CollectorRegistry()
    registry.register(WorkerCollector(_Worker()))  # type: ignore[arg-type]
    text += generate_latest(registry).decode()
    names = set(re.findall(r"^# TYPE (\w+)", text, flags=re.M))
    return names | {f"{n}_total" for n in names} | {f"{n}_bucket" for n in names}


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_the_config_loads_the_rules_and_compose_mounts_them() -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert prom["rule_files"] == ["/etc/prometheus/rules.yml"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert (
        "./deploy/prometheus/rules.yml:/etc/prometheus/rules.yml:ro"
        in (compose["services"]["prometheus"]["volumes"])
    )


def test_the_rules_cover_what_an_sre_pages_on_and_use_served_metrics() -> None:
    names = {rule["alert"] for rule in rules()}
    assert {"VigilWorkerDown", "VigilLagRising", "VigilDeadLetterRate", "VigilTrainerStale",
            "VigilRedisDown"} <= names  # fmt: skip
    metrics = served()
    for rule in rules():
        assert rule["for"] and rule["labels"]["severity"] in {"page", "warning"}
        assert rule["annotations"]["summary"]
        used = set(re.findall(r"\b(vigil_\w+)", rule["expr"]))
        assert used <= metrics, (rule["alert"], used - metrics)
        assert not re.search(r"\bsum\s*\(\s*rate\(vigil_", rule["expr"]), rule["alert"]


def test_grafana_combines_api_totals_with_max_and_shows_the_model_version() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "vigil.json").read_text())
    metrics = served()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            assert set(re.findall(r"\b(vigil_\w+)", expr)) <= metrics, expr
            # two API replicas serve the same totals: summing them doubles every number
            assert not re.search(r"\bsum\b", expr), expr
    model = next(p for p in dashboard["panels"] if p["title"] == "Model")
    assert model["options"]["textMode"] == "name"
    assert model["targets"][0]["legendFormat"] == "{{version}}"
