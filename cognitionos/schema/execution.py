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

An object whose selected fields are all such leaves (a step's ``id stepKey status``, a
workflow's ``key version name``) is completed in one loop: graphql-core would walk
completion, field collection and a field execution for each one, about 10 µs an object
before its fields. So is a plain attribute holding such an object, or a list of them (a
search hit's ``highlights { field text }``, a facet's ``values``), to any depth. The
selection is collected by graphql-core itself (fragments, ``@skip``/``@include`` and
variables apply as usual) and anything the loop cannot answer exactly (a null where the
type says non-null, a value that does not coerce, an awaitable, anything but a list or a
tuple where a list is declared) sends the whole object back to graphql-core, whose own completion of
its fields then takes the loop again wherever it can.

``lean_resolvers`` does the same for a plain synchronous resolver (``def steps(self,
info)``: no GraphQL arguments, no field extension or permission): strawberry's generic
wrapper converts arguments, chains extensions and builds closures on every call, about
8 µs; the lean one builds the ``Info`` and calls the function. Errors and awaitables it
returns take graphql-core's usual path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)
from graphql.pyutils import Undefined, is_awaitable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

__all__ = ["FastLeaves", "fast_leaves_for", "lean_resolvers", "plain_leaves", "plain_objects"]

Leaf = tuple[str, Callable[[Any], Any]]  # (python attribute, coerce_output_value)
Nested = tuple[str, GraphQLOutputType]  # (python attribute, the field's declared type)
# A selection answered in one loop: (response name, attribute or None for __typename,
# coerce or the type name, nullable, None for a leaf or (the object's plan, a list?,
# items nullable?)).
Entry = tuple[str, str | None, Any, bool, "tuple[Plan, bool, bool] | None"]
Plan = tuple[Entry, ...]


def _plain_fields(schema: GraphQLSchema) -> Iterator[tuple[str, str, Any, str]]:
    """(type name, field name, field, python attribute) of every object type's field that
    strawberry answers by reading an attribute: no arguments, no resolver, no permission
    or other field extension."""
    for type_name, named in schema.type_map.items():
        if not isinstance(named, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for name, field in named.fields.items():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if definition is None or field.args:
                continue
            # strawberry calls a field without a resolver "default" even when it carries
            # permission classes or other field extensions: those must run.
            if definition.extensions or definition.permission_classes:
                continue
            if getattr(field.resolve, "_is_default", False):
                yield type_name, name, field, definition.python_name


def plain_leaves(schema: GraphQLSchema) -> dict[str, dict[str, Leaf]]:
    """Per object type name, its fields that are a plain attribute of a scalar or enum."""
    leaves: dict[str, dict[str, Leaf]] = {}
    for type_name, name, field, attribute in _plain_fields(schema):
        inner = field.type.of_type if is_non_null_type(field.type) else field.type
        if is_leaf_type(inner):
            leaves.setdefault(type_name, {})[name] = (attribute, inner.coerce_output_value)
    return leaves


def plain_objects(schema: GraphQLSchema) -> dict[str, dict[str, Nested]]:
    """Per object type name, its fields that are a plain attribute holding an object, or a
    list of objects (one list level)."""
    objects: dict[str, dict[str, Nested]] = {}
    for type_name, name, field, attribute in _plain_fields(schema):
        if _object_of(field.type) is not None:
            objects.setdefault(type_name, {})[name] = (attribute, field.type)
    return objects


def _object_of(declared: Any) -> tuple[GraphQLObjectType, bool, bool] | None:
    """(the object type, a list?, items nullable?) of ``T``, ``[T]`` and their non-null
    forms; None for anything else."""
    inner = declared.of_type if is_non_null_type(declared) else declared
    is_list = is_list_type(inner)
    item = inner.of_type if is_list else inner
    item_nullable = not is_non_null_type(item)
    named = item if item_nullable else item.of_type
    if not isinstance(named, GraphQLObjectType):
        return None
    return named, is_list, item_nullable


_MISSING = object()


def _read(source: Any, attribute: str) -> Any:
    """``source.attribute``, or ``_MISSING`` when reading it fails (no such attribute, a
    property that raises): then graphql-core reads it again and reports the error."""
    try:
        return getattr(source, attribute)
    except Exception:
        return _MISSING


def _complete(plan: Plan, source: Any) -> dict[str, Any] | None:
    """``source`` completed by ``plan``, or None where graphql-core must answer."""
    completed: dict[str, Any] = {}
    for response_name, attribute, coerce, nullable, nested in plan:
        if attribute is None:
            completed[response_name] = coerce  # __typename
            continue
        value = _read(source, attribute)
        if value is _MISSING:
            return None  # graphql-core reports the failed read at the field's path
        if value is None:
            if not nullable:
                return None  # a non-null error: graphql-core's message and path
            completed[response_name] = None
            continue
        if isinstance(value, Exception):
            return None
        if nested is None:
            try:
                coerced = coerce(value)
            except Exception:
                return None
            if coerced is None or coerced is Undefined:
                return None
            completed[response_name] = coerced
            continue
        if is_awaitable(value):
            return None
        sub_plan, is_list, item_nullable = nested
        if not is_list:
            sub = _complete(sub_plan, value)
            if sub is None:
                return None
            completed[response_name] = sub
            continue
        if not isinstance(value, list | tuple):
            # Anything else graphql-core iterates itself: a generator read here would be
            # spent if the object then went back to graphql-core.
            return None
        items: list[Any] = []
        for item in value:
            if item is None:
                if not item_nullable:
                    return None
                items.append(None)
                continue
            if isinstance(item, Exception) or is_awaitable(item):
                return None
            sub = _complete(sub_plan, item)
            if sub is None:
                return None
            items.append(sub)
        completed[response_name] = items
    return completed


class FastLeaves(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context with the plain-leaf shortcut above."""

    leaves: dict[str, dict[str, Leaf]] = {}
    objects: dict[str, dict[str, Nested]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        # Resolve middleware (an extension implementing ``resolve``) must see every field:
        # then nothing takes the shortcut. Decided once per operation, not per field.
        plain = manager is None or not manager.middlewares
        self.shortcuts = self.leaves if plain else {}
        self.object_shortcuts = self.objects if plain else {}
        # The operation's all-leaf plans, keyed as graphql-core keys its own memo.
        self.plans: dict[tuple[str, int], tuple[Any, Plan | None]] = {}

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        fields = self.shortcuts.get(parent_type.name)
        if fields is not None:
            leaf = fields.get(field_details_list[0].node.name.value)
            if leaf is not None:
                value = _read(source, leaf[0])
                if value is not None and value is not _MISSING and not isinstance(value, Exception):
                    try:
                        coerced = leaf[1](value)
                    except Exception:  # graphql-core's path reports it, located
                        coerced = None
                    if coerced is not None and coerced is not Undefined:
                        return coerced
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan(return_type, field_details_list)
        if plan is not None:
            completed = _complete(plan, result)
            if completed is not None:
                return completed
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plan(self, return_type: GraphQLObjectType, field_details_list: Any) -> Plan | None:
        """The all-leaf plan of this selection on ``return_type``, or None; per execution."""
        plans = self.plans
        # Like graphql-core's own memo: keyed by the list's identity, the list kept alive.
        key = (return_type.name, id(field_details_list))
        cached = plans.get(key)
        if cached is None:
            cached = plans[key] = (
                field_details_list,
                self._make_plan(return_type, field_details_list),
            )
        return cached[1]

    def _make_plan(self, return_type: GraphQLObjectType, field_details_list: Any) -> Plan | None:
        fields = self.shortcuts.get(return_type.name, {})
        objects = self.object_shortcuts.get(return_type.name, {})
        if not (fields or objects) or return_type.is_type_of is not None:
            return None
        grouped, defer_usages, _ = self.collect_subfields(return_type, field_details_list)
        if defer_usages:
            return None
        plan: list[Entry] = []
        for response_name, details in grouped.items():
            node = details[0].node
            if node.arguments or (
                node.directives
                and any(d.name.value not in ("skip", "include") for d in node.directives)
            ):
                return None
            name = node.name.value
            if name == "__typename":
                plan.append((response_name, None, return_type.name, False, None))
                continue
            nullable = not is_non_null_type(return_type.fields[name].type)
            leaf = fields.get(name)
            if leaf is not None:
                plan.append((response_name, leaf[0], leaf[1], nullable, None))
                continue
            held = objects.get(name)
            shape = _object_of(held[1]) if held is not None else None
            if held is None or shape is None:
                return None
            named, is_list, item_nullable = shape
            sub_plan = self._plan(named, details)
            if sub_plan is None:
                return None
            plan.append(
                (response_name, held[0], None, nullable, (sub_plan, is_list, item_nullable))
            )
        return tuple(plan)


def lean_resolvers(schema: Any) -> list[str]:
    """Give plain synchronous resolvers of a strawberry ``schema`` a lean resolve function.

    Returns the ``Type.field`` names changed. Nothing changes when the schema has
    exception handlers (strawberry's wrapper applies them).
    """
    if getattr(schema.schema_converter, "_exception_handler_specs", ()):
        return []
    info_class = schema.config.info_class
    changed = []
    for type_name, named in schema._schema.type_map.items():
        if not isinstance(named, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for name, field in named.fields.items():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if definition is None or definition.base_resolver is None:
                continue
            resolver = definition.base_resolver
            if definition.extensions or field.args:
                continue
            if resolver.is_async or definition.is_subscription or resolver.arguments:
                continue
            if resolver.root_parameter is not None or resolver.parent_parameter is not None:
                continue
            info = resolver.info_parameter
            field.resolve = _lean(
                resolver.wrapped_func,
                with_self=resolver.self_parameter is not None,
                info_name=info.name if info is not None else None,
                definition=definition,
                info_class=info_class,
            )
            changed.append(f"{type_name}.{name}")
    return changed


def _lean(
    func: Callable[..., Any],
    *,
    with_self: bool,
    info_name: str | None,
    definition: Any,
    info_class: Any,
) -> Callable[..., Any]:
    if info_name is None:
        if with_self:
            return lambda source, info: func(source)
        return lambda source, info: func()

    def resolve(source: Any, info: Any) -> Any:
        kwargs = {info_name: info_class(_raw_info=info, _field=definition)}
        return func(source, **kwargs) if with_self else func(**kwargs)

    return resolve


def fast_leaves_for(schema: GraphQLSchema) -> type[FastLeaves]:
    """A ``FastLeaves`` subclass bound to ``schema``'s plain leaves."""
    return type(
        "SchemaFastLeaves",
        (FastLeaves,),
        {"leaves": plain_leaves(schema), "objects": plain_objects(schema)},
    )
