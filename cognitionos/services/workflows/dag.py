"""DAG checks: cycles (named), what a step reaches, sinks. Ordering and cycle detection
are the standard library's ``graphlib``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from graphlib import CycleError, TopologicalSorter

__all__ = ["ancestors", "find_cycle", "sinks"]


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as ``[a, b, ..., a]`` following dependencies, or None."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        # graphlib names it along the edges dependency -> dependent; ours follow depends-on.
        return list(reversed(exc.args[1]))
    return None


def ancestors(graph: Mapping[str, Sequence[str]], node: str) -> set[str]:
    """Every node ``node`` reaches along ``graph`` (its descendants, given the children)."""
    found: set[str] = set()
    todo = list(graph.get(node, ()))
    while todo:
        dep = todo.pop()
        if dep not in found:
            found.add(dep)
            todo.extend(graph.get(dep, ()))
    return found


def sinks(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """Steps nothing depends on: their outputs are the execution's outputs."""
    depended = {dep for deps in graph.values() for dep in deps}
    return [node for node in graph if node not in depended]
