"""Types shared by every domain: Relay connections, JSON, health."""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.scalars import JSON

from cognitionos.services.errors import BadUserInput
from cognitionos.services.pagination import Page

__all__ = [
    "JSON",
    "SCALAR_OVERRIDES",
    "Connection",
    "Edge",
    "Health",
    "PageInfo",
    "connection_from_page",
    "json_object",
    "parse_id",
]

T = TypeVar("T")


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


def json_object(value: Any, field: str) -> dict[str, Any]:
    """A ``JSON`` argument that must be an object (None: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadUserInput(f"{field} must be a JSON object", field=field)
    return value
