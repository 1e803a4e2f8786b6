"""The import direction written in `pipeline/__init__.py`, checked on every module.

Imports are read from the source (function-local ones included), so a lazy import
cannot hide a dependency that points the wrong way.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Rooms in order: each may import itself and the rooms before it.
ORDER = [
    ("settings", "settings_loader", "errors", "service_links"),
    ("contracts",),
    ("kafka", "state"),
    ("models", "sinks"),
    ("worker",),
    ("api",),
    ("cli", "local", "evaluation"),
]
RANK = {room: rank for rank, rooms in enumerate(ORDER) for room in rooms}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "pipeline" and parts[1] in RANK else None


def test_detectors_never_import_pipeline() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules("detectors")
        for name in _imports(path)
        if name == "pipeline" or name.startswith("pipeline.")
    ]
    assert offenders == []


def test_pipeline_rooms_import_only_rooms_before_them() -> None:
    offenders = []
    for path in _modules("pipeline"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        own = _room(".".join(parts))
        if own is None:
            continue
        for name in _imports(path):
            other = _room(name)
            if other is not None and RANK[other] > RANK[own]:
                offenders.append(f"{path.relative_to(ROOT)} ({own}) imports {name} ({other})")
    assert offenders == []


def test_every_pipeline_module_lives_in_a_room() -> None:
    loose = [
        p.name
        for p in (ROOT / "pipeline").glob("*.py")
        if p.stem not in RANK and p.name != "__init__.py"
    ]
    assert loose == []


def test_no_import_cycle_between_modules() -> None:
    """A module-level import graph with no cycle: every module can be imported alone."""
    graph: dict[str, set[str]] = {}
    for package in ("pipeline", "detectors"):
        for path in _modules(package):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            graph[name] = set()
    for package in ("pipeline", "detectors"):
        for path in _modules(package):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            graph[name] = {m for m in _imports(path) if m in graph and m != name}
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []
