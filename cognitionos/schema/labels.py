"""The metric label of a GraphQL operation: what it asks for, never what it calls itself.

``operationName`` is the client's to choose, so it would mint a series per name. The
root fields an operation selects are the schema's: one of them names the operation, two
or more are ``multiple``, and a document that selects anything else is ``other``.
"""

from __future__ import annotations

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    get_operation_ast,
)

from cognitionos.observability.metrics import OTHER

__all__ = ["MULTIPLE", "operation_label"]

MULTIPLE = "multiple"
_META = frozenset({"__typename", "__schema", "__type"})


def operation_label(
    schema: GraphQLSchema, document: DocumentNode | None, operation_name: str | None
) -> str:
    if document is None:
        return OTHER
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return OTHER
    root = schema.get_root_type(operation.operation)
    if root is None:
        return OTHER
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: set[str] = set()
    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    walk(fragments[name].selection_set)

    walk(operation.selection_set)
    if not names or not names <= (root.fields.keys() | _META):
        return OTHER
    return names.pop() if len(names) == 1 else MULTIPLE
