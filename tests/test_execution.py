"""The plain-leaf shortcut (schema/execution.py) answers exactly what graphql-core would.

Each query runs on two schemas built from the same types: strawberry's own execution
context and ``FastLeaves``. Data, errors, messages and paths must be identical,
including the cases the shortcut hands back (nulls, values that do not coerce, fields
with resolvers or arguments) and those around it (aliases, fragments, directives).
"""

from __future__ import annotations

import enum
from typing import Any

import pytest
import strawberry
from strawberry.permission import BasePermission

from cognitionos.schema.execution import (
    FastLeaves,
    fast_leaves_for,
    lean_resolvers,
    plain_leaves,
    plain_objects,
)


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@strawberry.type
class Item:
    id: strawberry.ID
    name: str
    count: int
    ratio: float | None
    colour: Colour
    note: str | None
    required: str  # the source sometimes holds None: a non-null error

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return self.name.upper() * times

    @strawberry.field
    def described(self, info: strawberry.Info) -> str:
        selected = [f.name for f in info.selected_fields]
        return f"{info.field_name} of {self.name} at {info.path.as_list()}: {selected}"

    @strawberry.field
    def broken(self) -> str:
        raise ValueError(f"{self.name} is broken")

    @strawberry.field
    def later(self) -> str:  # a synchronous resolver that answers an awaitable
        async def value() -> str:
            return f"{self.name} later"

        return value()  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    def constant() -> int:
        return 42

    @strawberry.field
    def friend(self) -> Item | None:
        return GOOD if self is not GOOD else None  # type: ignore[return-value]


class Source:
    """A source object whose attributes may break the declared types."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


GOOD = Source(id="i1", name="one", count=3, ratio=0.5, colour=Colour.GREEN, note=None, required="r")
BAD = Source(id="i2", name="two", count="many", ratio="x", colour="purple", note=7, required=None)


class Deny(BasePermission):
    message = "denied"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


class Raises:
    """A source whose ``weight`` is a property that fails."""

    label = "raises"

    @property
    def weight(self) -> int:
        raise ValueError("no weight today")


@strawberry.type
class Tag:
    label: str
    weight: int | None


@strawberry.type
class Box:
    """Plain attributes holding objects and lists of objects: completed in one loop when
    every value fits, by graphql-core otherwise."""

    name: str
    tags: list[Tag]
    maybe_tags: list[Tag | None] | None
    main: Tag
    extra: Tag | None
    items: list[Item]
    # No resolver, but a permission: never read by the loop.
    secret: str | None = strawberry.field(permission_classes=[Deny])
    secret_tag: Tag | None = strawberry.field(permission_classes=[Deny])


def _tag(label: Any, weight: Any = 1) -> Source:
    return Source(label=label, weight=weight)


def _box(name: str, **values: Any) -> Source:
    fields = {
        "name": name,
        "tags": [_tag("x"), _tag("y", None)],
        "maybe_tags": [_tag("z", 2), None],
        "main": _tag("m", 3),
        "extra": None,
        "items": [GOOD],
        "secret": "TOP SECRET",
        "secret_tag": _tag("hidden"),
    }
    fields.update(values)
    return Source(**fields)


def _items() -> Any:
    yield _tag("from a generator")


def _boxes() -> list[Source]:
    """Fresh each time: a generator is read once."""
    return [
        _box("good"),
        _box("empty", tags=[], maybe_tags=None, extra=_tag("e")),
        _box("generator", tags=_items()),
        # Read by the loop, then the box goes back to graphql-core (extra's weight does not
        # coerce, a nullable field: the box stays): a spent generator would answer no tags.
        _box("spent generator", tags=_items(), extra=_tag("e", "heavy")),
        _box("null item", tags=[_tag("a"), None]),  # None in [Tag!]!: the box becomes null
        _box("not a list", tags="abc"),  # a string is not a list: an error
        _box("string list", maybe_tags="abc"),  # its characters must not pass for items
        _box("null leaf", tags=[_tag(None)]),  # None in a non-null leaf of an item
        _box("bad leaf", tags=[_tag("w", "heavy")]),  # does not coerce to Int
        _box("null main", main=None),
        _box("bad item", items=[GOOD, BAD]),
        _box("missing attribute", tags=[Source(label="no weight")]),
        _box("raising property", tags=[Raises()]),
        _box("mapping", extra={"label": "a dict", "weight": 2}),
    ]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [GOOD, BAD]  # type: ignore[list-item]

    @strawberry.field
    def good(self) -> Item:
        return GOOD  # type: ignore[return-value]

    @strawberry.field
    def box(self) -> Box:
        return _box("good")  # type: ignore[return-value]

    @strawberry.field
    def boxes(self) -> list[Box | None]:
        return _boxes()  # type: ignore[return-value]


QUERIES = [
    "{ good { id name count ratio colour note required } }",
    "{ good { a: name b: name count } }",
    "{ good { ...F } } fragment F on Item { id colour shout(times: 2) }",
    "query ($s: Boolean!) { good { name @skip(if: $s) count @include(if: $s) } }",
    "{ items { id name } }",
    "{ items { count } }",  # "many" does not coerce to Int
    "{ items { ratio } }",  # "x" does not coerce to Float (nullable: data null + error)
    "{ items { colour } }",  # not a member of the enum
    "{ items { note } }",  # 7 as String
    "{ items { required } }",  # None in a non-null field: the list item becomes null
    "{ items { id shout } }",
    "{ __typename good { __typename id } }",
    "{ good { __typename ... on Item { id note } ...L } } fragment L on Item { count }",
    "{ items { __typename id note ratio } }",  # all leaves: one loop, or graphql-core
    "{ items { id required } }",  # the second item falls back whole
    "query ($s: Boolean!) { items { id @include(if: $s) name @skip(if: $s) } }",
    "{ items { described x: described } }",
    "{ items { id broken } }",  # an error at each item's path; the items become null
    "{ good { constant friend { name friend { name } } } }",
    "{ boxes { name tags { label weight } } }",
    "{ boxes { name maybeTags { weight } } }",
    "{ boxes { name tags { label } extra { weight } } }",
    "{ boxes { name tags { label weight } extra { label weight } } }",
    "{ boxes { name secret secretTag { label } } }",  # denied: null and an error, each
    "{ boxes { maybeTags { label } main { label } extra { weight } } }",
    "{ boxes { tags { __typename label ...W } } } fragment W on Tag { weight }",
    "query ($s: Boolean!) { boxes { tags @skip(if: $s) { label } "
    "main @include(if: $s) { l: label } } }",
    "{ boxes { name items { id name } } }",
    "{ boxes { items { id shout } } }",  # a resolver inside: items through graphql-core
    "{ boxes { name main { label } items { note required } } }",
    "{ boxes { __typename b: tags { label } c: tags { weight } } }",
]
ASYNC_QUERIES = ["{ items { later name } }", "{ good { later broken } }"]


def run(schema: strawberry.Schema, query: str) -> dict[str, Any]:
    result = schema.execute_sync(query, variable_values={"s": True})
    return shown(result)


def shown(result: Any) -> dict[str, Any]:
    return {
        "data": result.data,
        "errors": [(e.message, e.path) for e in result.errors or []],
    }


@pytest.fixture(scope="module")
def schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    reference = strawberry.Schema(query=Query)
    fast = strawberry.Schema(query=Query)
    fast.execution_context_class = fast_leaves_for(fast._schema)
    lean = lean_resolvers(fast)
    assert sorted(lean) == [
        "Item.broken",
        "Item.constant",
        "Item.described",
        "Item.friend",
        "Item.later",
        "Query.box",
        "Query.boxes",
        "Query.good",
        "Query.items",
    ]
    return reference, fast


@pytest.mark.parametrize("query", QUERIES)
def test_same_answer_as_graphql_core(
    schemas: tuple[strawberry.Schema, strawberry.Schema], query: str
) -> None:
    reference, fast = schemas
    assert run(fast, query) == run(reference, query)


@pytest.mark.parametrize("query", ASYNC_QUERIES)
async def test_same_answer_for_awaitables(
    schemas: tuple[strawberry.Schema, strawberry.Schema], query: str
) -> None:
    reference, fast = schemas
    assert shown(await fast.execute(query)) == shown(await reference.execute(query))


def test_only_plain_scalar_fields_take_the_shortcut(
    schemas: tuple[strawberry.Schema, strawberry.Schema],
) -> None:
    leaves = plain_leaves(schemas[1]._schema)
    assert set(leaves["Item"]) == {"id", "name", "count", "ratio", "colour", "note", "required"}
    assert "Query" not in leaves  # resolvers, and object types, go through graphql-core
    assert "secret" not in leaves["Box"]  # a permission, even without a resolver
    assert set(plain_objects(schemas[1]._schema)["Box"]) == {
        "tags",
        "maybeTags",
        "main",
        "extra",
        "items",
    }
    assert issubclass(schemas[1].execution_context_class, FastLeaves)


def test_the_shortcut_answers_good_values_itself(
    schemas: tuple[strawberry.Schema, strawberry.Schema], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a vacuous comparison: good leaves never reach graphql-core's execute_field."""
    fast = schemas[1]
    reached: list[str] = []
    original = FastLeaves.__mro__[1].execute_field

    def spy(self: Any, parent_type: Any, source: Any, fields: Any, *rest: Any) -> Any:
        reached.append(f"{parent_type.name}.{fields[0].node.name.value}")
        return original(self, parent_type, source, fields, *rest)

    monkeypatch.setattr(FastLeaves.__mro__[1], "execute_field", spy)
    assert run(fast, "{ good { id name count colour note } }")["errors"] == []
    assert reached == ["Query.good"]  # the whole Item in one loop, its null note included
    reached.clear()
    assert run(fast, "{ good { id shout } }")["errors"] == []
    assert reached == ["Query.good", "Item.shout"]  # a resolver: only that field leaves
    reached.clear()
    nested = (
        "{ box { name tags { label weight } maybeTags { label } main { label } extra { label } } }"
    )
    assert run(fast, nested)["errors"] == []
    assert reached == ["Query.box"]  # the box, its lists and its objects in one loop


def test_resolve_middleware_sees_every_field() -> None:
    """An extension that implements ``resolve`` turns the shortcuts off for the operation."""
    from strawberry.extensions import SchemaExtension

    class Shout(SchemaExtension):
        def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
            value = _next(root, info, *args, **kwargs)
            return value.upper() if isinstance(value, str) else value

    reference = strawberry.Schema(query=Query, extensions=[Shout])
    fast = strawberry.Schema(query=Query, extensions=[Shout])
    fast.execution_context_class = fast_leaves_for(fast._schema)
    lean_resolvers(fast)
    query = "{ good { id name note colour } items { name } }"
    answer = run(fast, query)
    assert answer == run(reference, query)
    assert answer["data"]["good"]["name"] == "ONE"  # the plain field went through it
