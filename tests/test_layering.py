"""The package graph has layers, not circles, and every public module's ``__all__`` holds.

Imports are read with ``ast`` (module level, inside functions and under ``TYPE_CHECKING``
alike): a cycle that only shows at run time, in one import order, is still a cycle. Two
graphs are checked: between the service packages (``services/workflows``,
``services/notifications``, ``services/errors.py``, ...) and between the top-level
packages (``schema``, ``resolvers``, ``services``, ``web``, ...).
"""

from __future__ import annotations

import ast
import importlib
import itertools
import pkgutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

import cognitionos

ROOT = Path(cognitionos.__file__).parent
Graph = dict[str, dict[str, list[str]]]  # unit -> unit it imports -> where ("path:line")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> list[tuple[str, int]]:
    """Every ``cognitionos`` module (or name in one) the file imports, with its line."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((module, node.lineno))
            found.extend((f"{module}.{alias.name}", node.lineno) for alias in node.names)
    return [(module, line) for module, line in found if module.startswith("cognitionos.")]


def _service_unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[1:2] == ["services"] and len(parts) > 2 else None


def _top_unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _graph(unit_of: Callable[[str], str | None]) -> Graph:
    graph: Graph = defaultdict(lambda: defaultdict(list))
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        source = unit_of(_module_name(path))
        if source is None:
            continue
        for module, line in _imported(path):
            target = unit_of(module)
            if target is not None and target != source:
                graph[source][target].append(f"{path.relative_to(ROOT.parent)}:{line}")
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """A cycle as ``[a, b, ..., a]`` following imports, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        path.append(node)
        for target in sorted(graph.get(node, {})):
            if target in path:
                return [*path[path.index(target) :], target]
            if target not in done:
                found = visit(target)
                if found:
                    return found
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if node not in done:
            found = visit(node)
            if found:
                return found
    return None


def _explain(graph: Graph, cycle: list[str]) -> str:
    lines = [" -> ".join(cycle)]
    for source, target in itertools.pairwise(cycle):
        lines.append(f"  {source} -> {target}: {', '.join(sorted(set(graph[source][target])))}")
    return "\n".join(lines)


def edges(graph: Graph) -> list[str]:
    return [f"{s} -> {t}" for s in sorted(graph) for t in sorted(graph[s])]


@pytest.mark.parametrize(
    "unit_of", [_service_unit, _top_unit], ids=["service packages", "top-level packages"]
)
def test_packages_import_each_other_in_layers_not_cycles(
    unit_of: Callable[[str], str | None],
) -> None:
    graph = _graph(unit_of)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle:\n" + _explain(graph, cycle)


# What the workflow engine needs of these it declares itself (services/workflows/ports.py);
# the runtime, outside services/, hands the concrete services in.
_DRIVEN_BY_WORKFLOWS = ("agents", "memory", "notifications")


def test_workflows_reach_agents_memory_and_notifications_only_through_their_ports() -> None:
    reach = _graph(_service_unit).get("workflows", {})
    found = [
        f"  {where} imports services/{target}"
        for target in _DRIVEN_BY_WORKFLOWS
        for where in sorted(set(reach.get(target, [])))
    ]
    assert not found, (
        "services/workflows imports what it should reach through its ports "
        "(services/workflows/ports.py, wired in cognitionos/runtime.py):\n" + "\n".join(found)
    )


def test_the_cycle_finder_names_a_cycle_and_where_it_is_imported() -> None:
    graph: Graph = {
        "workflows": {"notifications": ["workflows/steps/notify.py:14"], "errors": ["w.py:1"]},
        "notifications": {"workflows": ["notifications/channels.py:26"]},
    }
    cycle = find_cycle(graph)
    assert cycle == ["notifications", "workflows", "notifications"]
    assert "notifications/channels.py:26" in _explain(graph, cycle)
    assert find_cycle({"a": {"b": ["x:1"]}, "b": {}}) is None


def _public_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(cognitionos.__path__, "cognitionos."):
        parts = info.name.split(".")
        private = any(part.startswith("_") for part in parts[1:])
        if not private and "migrations" not in parts:
            names.append(info.name)
    return ["cognitionos", *names]


@pytest.mark.parametrize("name", _public_modules())
def test_all_lists_what_the_module_exports(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"
