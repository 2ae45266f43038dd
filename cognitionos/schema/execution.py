"""Plain scalar fields answered without graphql-core's per-field machinery.

Most fields of a page are scalars read off an object (an execution's ``id``, a step's
``status``). For each one graphql-core builds a resolve-info object, calls strawberry's
default-resolver wrapper, checks the result for an awaitable and dispatches completion
through the non-null, list and leaf branches: on a page of 20 executions with their
steps, about 360 of 445 fields and most of the request's CPU (``bench/http_requests.py``).

For a field whose resolver is strawberry's default (no resolver of its own, no field
extension, no arguments) and whose type is a scalar or an enum, graphql-core's answer is
exactly ``type.coerce_output_value(getattr(source, python_name))``. ``FastLeaves``
computes that directly and hands every other case back to graphql-core's own
``execute_field`` — a null (so non-null errors carry graphql-core's message and path),
an exception, a value that does not coerce — so errors and null propagation are
unchanged. Fields with any resolve middleware (an extension implementing ``resolve``)
always take graphql-core's path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLObjectType, GraphQLSchema, is_leaf_type, is_non_null_type
from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

__all__ = ["FastLeaves", "fast_leaves_for", "plain_leaves"]

Leaf = tuple[str, Callable[[Any], Any]]  # (python attribute, coerce_output_value)


def plain_leaves(schema: GraphQLSchema) -> dict[str, dict[str, Leaf]]:
    """Per object type name, its fields that are a plain attribute of a scalar or enum."""
    leaves: dict[str, dict[str, Leaf]] = {}
    for type_name, named in schema.type_map.items():
        if not isinstance(named, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for name, field in named.fields.items():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if definition is None or field.args:
                continue
            if not getattr(field.resolve, "_is_default", False):
                continue  # a resolver, a permission or another field extension
            inner = field.type.of_type if is_non_null_type(field.type) else field.type
            if is_leaf_type(inner):
                leaves.setdefault(type_name, {})[name] = (
                    definition.python_name,
                    inner.coerce_output_value,
                )
    return leaves


class FastLeaves(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context with the plain-leaf shortcut above."""

    leaves: dict[str, dict[str, Leaf]] = {}

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        fields = self.leaves.get(parent_type.name)
        if fields is not None:
            leaf = fields.get(field_details_list[0].node.name.value)
            if leaf is not None and not self._has_middleware():
                value = getattr(source, leaf[0], None)
                if value is not None and not isinstance(value, Exception):
                    try:
                        coerced = leaf[1](value)
                    except Exception:  # graphql-core's path reports it, located
                        coerced = None
                    if coerced is not None and coerced is not Undefined:
                        return coerced
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _has_middleware(self) -> bool:
        manager = self.middleware_manager
        return manager is not None and bool(manager.middlewares)


def fast_leaves_for(schema: GraphQLSchema) -> type[FastLeaves]:
    """A ``FastLeaves`` subclass bound to ``schema``'s plain leaves."""
    return type("SchemaFastLeaves", (FastLeaves,), {"leaves": plain_leaves(schema)})
