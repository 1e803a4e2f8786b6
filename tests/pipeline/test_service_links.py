"""Service-link recognition: every variable the kubelet writes, and nothing else."""

from __future__ import annotations

import pytest

from pipeline.service_links import service_link_names
from tests.deploy.manifests import OLD_API_SERVICE, service, service_link_env

MANY_PORTS = service(
    "vigil-kafka", ("", 9092, "TCP"), ("jmx-metrics", 9404, "TCP"), ("dns", 53, "UDP"),
    ("assoc", 7777, "SCTP"),
)  # fmt: skip


@pytest.mark.parametrize("ip", ["10.96.0.17", "fd00:10:96::a"])
@pytest.mark.parametrize("svc", [OLD_API_SERVICE, MANY_PORTS], ids=["api", "many-ports"])
def test_every_injected_variable_is_recognised(svc: dict, ip: str) -> None:
    env = service_link_env(svc, ip)
    assert len(env) >= 8
    assert service_link_names(env, "VIGIL_") == set(env)


def test_only_names_with_the_prefix_are_returned() -> None:
    env = service_link_env(service("kafka", ("", 9092, "TCP")), "10.0.0.3")
    env |= service_link_env(OLD_API_SERVICE, "10.0.0.4")
    assert service_link_names(env, "VIGIL_") == {k for k in env if k.startswith("VIGIL_")}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VIGIL_API_PORT", "9000"),  # the api_port setting itself
        ("VIGIL_API_PROT", "8000"),  # a typo
        ("VIGIL_API_PORT", "tcp://10.0.0.9:80"),  # another host than the Service's
        ("VIGIL_API_PORT", "http://10.0.0.4:80"),  # not a link protocol
        ("VIGIL_API_PORT_80_TCP_PROTO", "udp"),  # disagrees with its name
        ("VIGIL_API_PORT_80_TCP_ADDR", "10.0.0.5"),
        ("VIGIL_API_PORT_80_TCP_PORT", "81"),
        ("VIGIL_API_PORT_80_HTTP", "tcp://10.0.0.4:80"),
        ("VIGIL_API_SERVICE_PORT", "http"),
        ("VIGIL_API_SERVICE_PORT_HTTP", "99999"),
        ("VIGIL_API_SERVICE_NAME", "10.0.0.4"),
    ],
)
def test_near_misses_are_not_links(name: str, value: str) -> None:
    env = {"VIGIL_API_SERVICE_HOST": "10.0.0.4", name: value}
    assert name not in service_link_names(env, "VIGIL_")


def test_without_a_service_host_nothing_is_a_link() -> None:
    env = service_link_env(OLD_API_SERVICE, "10.0.0.4")
    del env["VIGIL_API_SERVICE_HOST"]
    assert service_link_names(env, "VIGIL_") == set()
    bad_host = {**env, "VIGIL_API_SERVICE_HOST": "api.example.com"}
    assert service_link_names(bad_host, "VIGIL_") == set()
