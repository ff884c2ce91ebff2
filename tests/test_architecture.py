"""The house rules of ``docs/architecture.md``, checked on the package's own imports.

Every ``import`` of ``airflow_mlops`` code anywhere in a module counts (module level, inside
functions and under ``TYPE_CHECKING``): a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "airflow_mlops"

# The floors of docs/architecture.md: a room may import rooms on lower floors only.
FLOORS = {
    "airflow_mlops": 0,  # the package root: __version__
    "exceptions": 0,
    "checks": 1,
    "partition": 1,
    "contract": 1,
    "progress": 1,
    "io": 1,
    "sources": 2,
    "store": 2,
    "models": 2,
    "scoring": 2,
    "drift": 2,
    "transform": 2,
    "hooks": 3,
    "operators": 4,
    "cli": 4,
    "serving": 4,
    "provider": 4,
    "__main__": 5,
    "demo": 5,
}
# The only edges between rooms of one floor: scoring applies models to the store's tables
# and measures shadow drift with drift's statistics; a drift check reads the store; the CLI
# runs the inference server (``airflow-mlops serve``); an operator publishes its logs.
SAME_FLOOR = {
    ("cli", "serving"),
    ("operators", "serving"),
    ("scoring", "models"),
    ("scoring", "store"),
    ("scoring", "drift"),
    ("drift", "store"),
}
# Rooms that run inside Airflow; everything on the engine floors and below stays Airflow-free.
AIRFLOW_ROOMS = {"hooks", "operators", "demo"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").exists() or (
        PACKAGE.parent / relative / "__init__.py"
    ).exists()


def imported_modules(path: Path) -> tuple[set[str], set[str]]:
    """(airflow_mlops modules, other top-level packages) that ``path`` imports anywhere."""
    ours: set[str] = set()
    foreign: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [
                f"{node.module}.{alias.name}"
                if is_module(f"{node.module}.{alias.name}")
                else node.module
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            (ours if name.split(".")[0] == "airflow_mlops" else foreign).add(name)
    return ours, {name.split(".")[0] for name in foreign}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


GRAPH = {module_name(path): imported_modules(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_room_has_a_floor():
    assert {room(m) for m in GRAPH} <= set(FLOORS), set(map(room, GRAPH)) - set(FLOORS)


def test_imports_point_down_never_up_or_across():
    wrong = sorted(
        f"{module} -> {target}"
        for module, (ours, _) in GRAPH.items()
        for target in ours
        if room(module) != room(target)
        and FLOORS[room(target)] >= FLOORS[room(module)]
        and (room(module), room(target)) not in SAME_FLOOR
    )
    assert wrong == []


def test_the_import_graph_has_no_cycle():
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            pytest.fail("import cycle: " + " -> ".join((*path[path.index(module) :], module)))
        if module in done:
            return
        for target in sorted(GRAPH[module][0]):
            visit(target, (*path, module))
        done.add(module)

    for module in GRAPH:
        visit(module, ())


def test_only_the_airflow_facing_rooms_import_airflow():
    importing = sorted(
        module
        for module, (_, foreign) in GRAPH.items()
        if "airflow" in foreign and room(module) not in AIRFLOW_ROOMS
    )
    assert importing == []
