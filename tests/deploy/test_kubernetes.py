"""deploy/k8s checked as data (no cluster here): what makes pods start and stay safe."""

from __future__ import annotations

from typing import Any

import yaml

from pipeline.settings import Settings
from tests.deploy.manifests import K8S, ROOT, manifests, project_version, service_link_env

ROLES = ("vigil-worker", "vigil-trainer", "vigil-api")


def _deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "Deployment"}


def _config() -> dict[str, str]:
    config = next(d for d in manifests() if d["kind"] == "ConfigMap")
    data: dict[str, str] = config["data"]
    return data


def test_every_role_and_shared_object_is_there() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in manifests()}
    assert {("Deployment", name) for name in ROLES} <= kinds
    assert ("ConfigMap", "vigil-config") in kinds
    assert ("PersistentVolumeClaim", "vigil-models") in kinds
    assert not any(d["kind"] == "Secret" for d in manifests())  # secrets by reference only
    for d in _deployments().values():
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for container in d["spec"]["template"]["spec"]["containers"]:
            refs = [next(iter(e.values()))["name"] for e in container["envFrom"]]
            assert refs == ["vigil-config", "vigil-secrets"]


def test_no_service_injects_vigil_variables() -> None:
    for d in _deployments().values():
        assert d["spec"]["template"]["spec"]["enableServiceLinks"] is False, d["metadata"]
    services = [d for d in manifests() if d["kind"] == "Service"]
    assert services
    for svc in services:
        names = service_link_env(svc, "10.96.0.10")
        assert names and not any(n.startswith("VIGIL_") for n in names), svc["metadata"]


def test_config_map_holds_known_settings_with_history_on() -> None:
    config = _config()
    known = {f"VIGIL_{name.upper()}" for name in Settings.model_fields}
    assert set(config) <= known, set(config) - known
    assert int(config["VIGIL_HISTORY_LENGTH"]) > 0
    assert not any("TOKEN" in k or "PASSWORD" in k or "REDIS_URL" in k for k in config)


def test_images_are_registry_qualified_versioned_and_set_by_kustomize() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files
    images = {entry["name"]: entry for entry in kustomization["images"]}
    for d in _deployments().values():
        for container in d["spec"]["template"]["spec"]["containers"]:
            name, _, tag = container["image"].rpartition(":")
            registry = name.split("/")[0]
            assert "." in registry or ":" in registry, container["image"]  # a registry host
            assert tag == project_version(), container["image"]
            assert images[name]["newTag"] == project_version()


def test_pods_run_as_uid_10001_on_a_read_only_root() -> None:
    for name, d in _deployments().items():
        pod = d["spec"]["template"]["spec"]
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] == context["fsGroup"] == 10001, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], name


def test_the_model_volume_is_the_trainers_alone_so_readwriteonce_works() -> None:
    """Workers and the API load live versions from Redis (the registry publishes them),
    so one pod mounts the claim and any storage class's ReadWriteOnce will do."""
    pvc = next(d for d in manifests() if d["kind"] == "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    for name, d in _deployments().items():
        pod = d["spec"]["template"]["spec"]
        claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
        mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
        if name == "vigil-trainer":
            assert [v["persistentVolumeClaim"]["claimName"] for v in claims] == ["vigil-models"]
            assert mounts["models"]["mountPath"] == _config()["VIGIL_MODEL_DIR"]
            assert not mounts["models"].get("readOnly", False)
            assert d["spec"]["strategy"] == {"type": "Recreate"}  # the old pod lets go first
        else:
            assert claims == [] and "models" not in mounts, name
    guide = (ROOT / "deploy" / "README.md").read_text()
    assert "ReadWriteOnce" in guide and "storageClassName" in guide


def test_workers_are_probed_and_scraped_on_their_http_port() -> None:
    pod = _deployments()["vigil-worker"]["spec"]["template"]
    port = int(_config()["VIGIL_WORKER_HTTP_PORT"])
    assert _config()["VIGIL_WORKER_HTTP_HOST"] == "0.0.0.0"
    container = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == port
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):  # fmt: skip
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    notes = pod["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true"
    assert int(notes["prometheus.io/port"]) == port and notes["prometheus.io/path"] == "/metrics"


def test_api_is_probed() -> None:
    container = _deployments()["vigil-api"]["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "/readyz" in " ".join(container["readinessProbe"]["exec"]["command"])


def test_operator_monitors_select_what_the_manifests_label() -> None:
    monitoring = K8S / "monitoring"
    assert yaml.safe_load((monitoring / "kustomization.yaml").read_text())["resources"] == [
        "monitors.yaml"
    ]
    monitors = {
        d["kind"]: d for d in yaml.safe_load_all((monitoring / "monitors.yaml").read_text())
    }
    pod = _deployments()["vigil-worker"]["spec"]["template"]
    pods = monitors["PodMonitor"]["spec"]
    assert pods["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert {e["port"] for e in pods["podMetricsEndpoints"]} <= ports
    api = next(d for d in manifests() if d["kind"] == "Service")
    services = monitors["ServiceMonitor"]["spec"]
    assert services["selector"]["matchLabels"].items() <= api["metadata"]["labels"].items()
    endpoint = services["endpoints"][0]
    assert endpoint["port"] in {p["name"] for p in api["spec"]["ports"]}
    assert endpoint["authorization"]["credentials"] == {
        "name": "vigil-secrets",
        "key": "VIGIL_API_TOKEN",
    }
