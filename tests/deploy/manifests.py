"""What the deploy tests share: the project version, Kubernetes manifests as data, and
the variables the kubelet injects for Services when a pod keeps service links on.

`service_link_env` follows kubelet's `envvars.FromServices` (pkg/kubelet/envvars): it is
written from that definition, independently of `pipeline.service_links`, which has to
recognise its output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def project_version() -> str:
    """pyproject's version: the tag every shipped image reference must carry."""
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def manifests() -> list[dict[str, Any]]:
    """Every document of every deploy/k8s/*.yaml except the kustomization."""
    return [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_link_env(service: dict[str, Any], cluster_ip: str) -> dict[str, str]:
    """The variables a pod in the Service's namespace gets for it (headless and
    ExternalName Services have no cluster IP and get none)."""
    spec = service["spec"]
    if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
        return {}
    prefix = _env_name(service["metadata"]["name"])
    ports = spec["ports"]
    env = {
        f"{prefix}_SERVICE_HOST": cluster_ip,
        f"{prefix}_SERVICE_PORT": str(ports[0]["port"]),
    }
    for port in ports:
        if port.get("name"):
            env[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port["port"])
    host = f"[{cluster_ip}]" if ":" in cluster_ip else cluster_ip
    for i, port in enumerate(ports):
        protocol = port.get("protocol", "TCP")
        url = f"{protocol.lower()}://{host}:{port['port']}"
        if i == 0:
            env[f"{prefix}_PORT"] = url  # docker links special-case the first port
        link = f"{prefix}_PORT_{port['port']}_{protocol.upper()}"
        env[link] = url
        env[f"{link}_PROTO"] = protocol.lower()
        env[f"{link}_PORT"] = str(port["port"])
        env[f"{link}_ADDR"] = cluster_ip
    return env


def service(name: str, *ports: tuple[str, int, str]) -> dict[str, Any]:
    """A Service document with (port name, port, protocol) ports; "" = unnamed."""
    return {
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "ports": [
                {"port": number, "protocol": protocol, **({"name": pname} if pname else {})}
                for pname, number, protocol in ports
            ]
        },
    }


# The Service that made every pod crash-loop (issue 14): its variables start with VIGIL_
# and one of them, VIGIL_API_PORT, is a setting's name. Another team's Service could still
# be called so in a shared namespace.
OLD_API_SERVICE = service("vigil-api", ("http", 80, "TCP"))
