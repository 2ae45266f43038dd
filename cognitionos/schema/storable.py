"""PostgreSQL cannot store U+0000 in text or JSONB: such a string is refused at the door,
in any argument, however deep (input objects, lists, JSON values and their keys), whether
written in the document or sent as a variable, before anything runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    ArgumentNode,
    GraphQLError,
    ObjectFieldNode,
    StringValueNode,
    VariableDefinitionNode,
    Visitor,
    visit,
)
from strawberry.extensions import SchemaExtension

from cognitionos.services.errors import BadUserInput

__all__ = ["RefuseUnstorableStrings"]

_NUL = "\x00"


def _in_value(value: Any, path: str) -> str | None:
    """The path of the first string holding NUL in a variable's value, or None."""
    if isinstance(value, str):
        return path if _NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if _NUL in str(key):
                return where
            if (found := _in_value(item, where)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _in_value(item, f"{path}[{index}]")) is not None:
                return found
    return None


class _Literals(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: str | None = None

    def enter_string_value(
        self, node: StringValueNode, key: Any, parent: Any, path: Any, ancestors: Any
    ) -> Any:
        if _NUL not in node.value:
            return None
        names = []
        for ancestor in [*ancestors, parent]:  # ancestors stop short of the parent
            if isinstance(ancestor, (ArgumentNode, ObjectFieldNode)):
                names.append(ancestor.name.value)
            elif isinstance(ancestor, VariableDefinitionNode):
                names.append(ancestor.variable.name.value)
        self.found = ".".join(names) or "query"
        return self.BREAK


def _unstorable(query: str | None, document: Any, variables: dict[str, Any] | None) -> str | None:
    for name, value in (variables or {}).items():
        if (found := _in_value(value, name)) is not None:
            return found
    # A document can only spell NUL as an escape (\u0000, \u{0}); most have none at all.
    if document is None or (query is not None and "\\u" not in query):
        return None
    literals = _Literals()
    visit(document, literals)
    return literals.found


class RefuseUnstorableStrings(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        field = None
        if context.pre_execution_errors is None:  # not refused already (a read-only key)
            field = _unstorable(context.query, context.graphql_document, context.variables)
        if field is not None:
            refusal = BadUserInput(
                f"{field}: text cannot contain the NUL character (\\u0000)", field=field
            )
            # Errors set before validation replace it (strawberry skips its own run).
            context.pre_execution_errors = [GraphQLError(refusal.message, original_error=refusal)]
        yield
