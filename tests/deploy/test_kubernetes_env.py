"""Pods start with the environment Kubernetes gives them (issue 14: every pod crash-looped).

Each role runs as its Deployment says (`vigil` + the container's args), with the
ConfigMap's data, the Secret's keys, and the service-link variables of every Service in
deploy/k8s as if `enableServiceLinks` were on, plus the cluster's `kubernetes` Service and
a `vigil-api` Service (the name that broke the pods, which another team's Service could
still carry). Addresses point at the test session's real broker and Redis.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.local.stack import StackInfo
from tests.deploy.manifests import OLD_API_SERVICE, manifests, service, service_link_env

VIGIL = str(Path(sys.executable).with_name("vigil"))
TOKEN = "k8s-test-token"
CLUSTER_SERVICES = [service("kubernetes", ("https", 443, "TCP")), OLD_API_SERVICE]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _container(name: str) -> dict[str, Any]:
    deployment = next(
        d for d in manifests() if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    )
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def pod_env(stack: StackInfo, tmp_path: Path, **config: str) -> dict[str, str]:
    """What a Vigil container sees: service links, ConfigMap, Secret (later wins, as in
    Kubernetes, where envFrom entries come after the service links)."""
    services = [d for d in manifests() if d["kind"] == "Service"] + CLUSTER_SERVICES
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env["VIGIL_HOME"] = str(tmp_path / "home")
    for i, svc in enumerate(services):
        env.update(service_link_env(svc, f"10.96.0.{10 + i}"))
    configmap = next(d for d in manifests() if d["kind"] == "ConfigMap")["data"]
    env.update(configmap)
    env.update(
        VIGIL_BOOTSTRAP_SERVERS=stack.bootstrap_servers,
        VIGIL_MODEL_DIR=str(tmp_path / "models"),
        VIGIL_WORKER_HTTP_HOST="127.0.0.1",
        VIGIL_REDIS_PREFIX=f"k8s-{tmp_path.name[-12:]}",
        **config,
    )
    env.update(VIGIL_REDIS_URL=stack.redis_url, VIGIL_API_TOKEN=TOKEN)  # the Secret
    assert "VIGIL_API_PORT" in env and "VIGIL_API_PORT_80_TCP_ADDR" in env
    return env


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `vigil <args>` with an environment; SIGTERM (then kill) at the end."""
    started: list[subprocess.Popen[str]] = []

    def run(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        log = (tmp_path / f"{args[-1]}-{len(started)}.log").open("w")
        proc = subprocess.Popen(
            [VIGIL, *args], env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(tmp_path.glob("*.log")))


def wait_until(
    check: Callable[[], bool], proc: subprocess.Popen[str], tmp_path: Path, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, f"exited {proc.returncode}:\n{_logs(tmp_path)}"
        assert time.monotonic() < deadline, f"not started:\n{_logs(tmp_path)}"
        time.sleep(0.25)


def answers(url: str, token: str | None = None) -> bool:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def test_worker_starts_and_reaches_its_loop(
    stack: StackInfo, tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    port = _free_port()
    run = f"k8s-{tmp_path.name[-12:]}"
    env = pod_env(
        stack, tmp_path, VIGIL_WORKER_HTTP_PORT=str(port), VIGIL_EVENTS_TOPIC=f"{run}.events",
        VIGIL_ALERTS_TOPIC=f"{run}.alerts", VIGIL_DEADLETTER_TOPIC=f"{run}.dead",
        VIGIL_GROUP_ID=run, VIGIL_TOPIC_PARTITIONS="2",
    )  # fmt: skip
    proc = start(_container("vigil-worker")["args"], env)
    wait_until(lambda: answers(f"http://127.0.0.1:{port}/readyz"), proc, tmp_path)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as res:
        checks = json.load(res)["checks"]
        assert checks["loop"] == "running" and checks["redis"] == "ok", checks
    assert "enableServiceLinks: false" in _logs(tmp_path)  # the one warning, no refusal


def test_api_starts_and_is_ready(
    stack: StackInfo, tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    port = _free_port()
    args = _container("vigil-api")["args"]
    args = [*args[: args.index("--port") + 1], str(port)]
    proc = start(args, pod_env(stack, tmp_path))
    wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), proc, tmp_path)
    assert answers(f"http://127.0.0.1:{port}/readyz", TOKEN)


def test_trainer_starts_and_schedules(
    stack: StackInfo, tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    # -v: the "scheduled" line is at info level; the role's args are otherwise its own.
    proc = start(["-v", *_container("vigil-trainer")["args"]], pod_env(stack, tmp_path))
    wait_until(lambda: "trainer scheduled: every" in _logs(tmp_path), proc, tmp_path)
    time.sleep(2 * 2.0)  # two of its request checks (trainer_poll_seconds): still running
    assert proc.poll() is None, _logs(tmp_path)
