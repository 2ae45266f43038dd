"""DAG checks: unknown dependencies, cycles (named), ancestors, sinks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["ancestors", "find_cycle", "sinks", "topological_order"]


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as ``[a, b, ..., a]`` following dependencies, or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for dep in graph.get(node, ()):
            if color.get(dep) == grey:
                return [*stack[stack.index(dep) :], dep]
            if color.get(dep) == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for node in graph:
        if color[node] == white:
            found = visit(node)
            if found:
                return found
    return None


def topological_order(graph: Mapping[str, Sequence[str]]) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> None:
        if node in seen:
            return
        seen.add(node)
        for dep in graph.get(node, ()):
            visit(dep)
        order.append(node)

    for node in graph:
        visit(node)
    return order


def ancestors(graph: Mapping[str, Sequence[str]], node: str) -> set[str]:
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
