"""Types shared by every domain: Relay connections, JSON, health."""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.scalars import JSON
from strawberry.types.base import has_object_definition
from strawberry.utils.str_converters import to_camel_case

from cognitionos.services.errors import BadUserInput
from cognitionos.services.pagination import Page
from cognitionos.services.specs import Spec

__all__ = [
    "JSON",
    "SCALAR_OVERRIDES",
    "Connection",
    "Edge",
    "Health",
    "PageInfo",
    "connection_from_page",
    "input_data",
    "json_object",
    "parse_id",
    "to_spec",
]

T = TypeVar("T")
S = TypeVar("S", bound=Spec)


def _finite_decimal(value: object) -> decimal.Decimal:
    try:
        number = decimal.Decimal(str(value))
    except decimal.DecimalException:
        number = decimal.Decimal("NaN")
    if not number.is_finite():
        # A coercion error is the client's (BAD_USER_INPUT), never an internal one.
        raise StrawberryInputCoercionError(
            f'Value cannot represent a Decimal: "{value}". Send a finite number.'
        )
    return number


# Decimal arguments are amounts: NaN and infinities are refused as the value is parsed.
SCALAR_OVERRIDES: dict[object, Any] = {
    decimal.Decimal: strawberry.scalar(
        name="Decimal",
        description="Decimal (fixed-point): a finite number, sent as a string or a number",
        serialize=str,
        parse_value=_finite_decimal,
    )
}


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    node: T
    cursor: str


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo


def connection_from_page(page: Page[Any], to_node: Callable[[Any], T]) -> Connection[T]:
    return Connection(
        edges=[Edge(node=to_node(item), cursor=page.cursor(item)) for item in page.items],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
    )


@strawberry.type
class Health:
    status: str
    database: str
    redis: str
    worker: str
    version: str


def parse_id(value: object, field: str) -> uuid.UUID:
    """An ``ID`` argument as a UUID; BAD_USER_INPUT naming the field otherwise."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise BadUserInput(f"{field} is not a valid id", field=field) from None


def input_data(value: Any) -> Any:
    """An input object as the client sent it: its GraphQL (camelCase) names, nested inputs
    too; JSON values as they are."""
    if has_object_definition(value) and not isinstance(value, type):
        return {
            f.graphql_name or to_camel_case(f.python_name): input_data(
                getattr(value, f.python_name)
            )
            for f in value.__strawberry_definition__.fields
        }
    if isinstance(value, list):
        return [input_data(item) for item in value]
    return value


def to_spec(model: type[S], value: Any, field: str | None = None) -> S:
    """An input object as the model it stands for, validated by that model: errors name
    the input's field as the client wrote it (inside ``field``, the argument, if given)."""
    return model.parse(input_data(value), field=field)


def json_object(value: Any, field: str) -> dict[str, Any]:
    """A ``JSON`` argument that must be an object (None: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadUserInput(f"{field} must be a JSON object", field=field)
    return value
