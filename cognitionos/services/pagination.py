"""Keyset pagination on ``(created_at, id)``, newest first. Never OFFSET."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.rows import plain_rows
from cognitionos.services.errors import BadUserInput

__all__ = ["Page", "decode_cursor", "encode_cursor", "paginate"]


class _Keyed(Protocol):
    id: Any
    created_at: Any


T = TypeVar("T", bound=_Keyed)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    has_next_page: bool

    def cursor(self, item: T) -> str:
        return encode_cursor(item.created_at, item.id)

    @property
    def end_cursor(self) -> str | None:
        return self.cursor(self.items[-1]) if self.items else None


def encode_cursor(created_at: datetime, id_: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{id_}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, _, id_ = base64.urlsafe_b64decode(padded).decode().partition("|")
        return datetime.fromisoformat(created), uuid.UUID(id_)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadUserInput("invalid pagination cursor", field="after") from None


def check_page_size(
    first: int | None, *, default: int = 20, maximum: int = 100, field: str = "first"
) -> int:
    if first is None:
        return default
    if first < 1 or first > maximum:
        raise BadUserInput(f"{field} must be between 1 and {maximum}", field=field)
    return first


async def paginate(
    session: AsyncSession,
    model: type[T],
    stmt: Select[Any],
    *,
    first: int | None,
    after: str | None,
    maximum: int = 100,
) -> Page[T]:
    """One page of ``stmt`` (a ``select(model)`` or ``plain_select(model)``), newest first."""
    limit = check_page_size(first, maximum=maximum)
    # Table columns work in both kinds of statement and keep a plain one free of the ORM.
    columns: Any = model.__table__.c  # type: ignore[attr-defined]
    created_at, id_ = columns.created_at, columns.id
    if after:
        at, last_id = decode_cursor(after)
        stmt = stmt.where(or_(created_at < at, and_(created_at == at, id_ < last_id)))
    stmt = stmt.order_by(created_at.desc(), id_.desc()).limit(limit + 1)
    result = await session.execute(stmt)
    # ``select(model)`` gives instances; ``plain_select(model)`` (db/rows.py) plain rows.
    one_entity = len(stmt.column_descriptions) == 1
    rows: list[T] = list(result.scalars().all() if one_entity else plain_rows(result, model))
    return Page(items=rows[:limit], has_next_page=len(rows) > limit)
