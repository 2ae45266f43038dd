"""Who may see a memory, and the SQL of the filters ``memories`` and ``searchMemories`` share
(the filter's shape, ``MemoryFilter``, is in ``services/inputs.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Numeric, and_, cast, func, literal, or_, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from cognitionos.db.models import Memory, MemoryScope
from cognitionos.services.auth import Principal
from cognitionos.services.errors import Forbidden
from cognitionos.services.inputs import MemoryFilter, MetadataCondition

__all__ = [
    "MemoryFilter",
    "MetadataCondition",
    "can_write",
    "check_readable",
    "conditions",
    "live",
    "visible",
]


def live(at: datetime | None = None) -> ColumnElement[bool]:
    """Not expired: expired memories are never returned, even before the purge."""
    return or_(Memory.expires_at.is_(None), Memory.expires_at > (at or datetime.now(UTC)))


def visible(principal: Principal) -> ColumnElement[bool]:
    """GLOBAL for everyone; the rest for their owner; everything for admins."""
    if principal.is_admin:
        return literal(True)
    return or_(Memory.scope == MemoryScope.GLOBAL, Memory.owner_id == principal.user_id)


def check_readable(memory: Memory, principal: Principal) -> None:
    if memory.scope is MemoryScope.GLOBAL or principal.is_admin:
        return
    if memory.owner_id != principal.user_id:
        raise Forbidden("this memory belongs to another user")


def can_write(scope: MemoryScope, owner_id: Any, principal: Principal) -> None:
    if principal.is_admin:
        return
    if scope is MemoryScope.GLOBAL:
        raise Forbidden("only admins write GLOBAL memories")
    if owner_id is not None and owner_id != principal.user_id:
        raise Forbidden("this memory belongs to another user")


def _metadata(c: MetadataCondition) -> ColumnElement[bool]:
    value = Memory.extra[c.key]
    parts: list[ColumnElement[bool]] = []
    if c.eq is not None:
        parts.append(Memory.extra.contains({c.key: c.eq}))  # jsonb @>: uses the GIN index
    if c.in_ is not None:
        parts.append(
            or_(*(Memory.extra.contains({c.key: v}) for v in c.in_)) if c.in_ else literal(False)
        )
    if c.contains is not None:
        if isinstance(c.contains, str):
            parts.append(
                or_(
                    and_(
                        func.jsonb_typeof(value) == "array",
                        value.contains(type_coerce([c.contains], JSONB)),
                    ),
                    and_(
                        func.jsonb_typeof(value) == "string",
                        func.strpos(func.lower(Memory.extra[c.key].astext), c.contains.lower()) > 0,
                    ),
                )
            )
        else:
            wanted = c.contains if isinstance(c.contains, list) else [c.contains]
            parts.append(value.contains(type_coerce(wanted, JSONB)))
    for op, compare in (("gt", "__gt__"), ("gte", "__ge__"), ("lt", "__lt__"), ("lte", "__le__")):
        bound = getattr(c, op)
        if bound is None:
            continue
        if isinstance(bound, (int, float)):
            number = cast(Memory.extra[c.key].astext, Numeric)
            parts.append(
                and_(func.jsonb_typeof(value) == "number", getattr(number, compare)(bound))
            )
        else:
            text = Memory.extra[c.key].astext
            parts.append(and_(func.jsonb_typeof(value) == "string", getattr(text, compare)(bound)))
    return and_(*parts)


def conditions(principal: Principal, f: MemoryFilter | None) -> list[ColumnElement[bool]]:
    """Visibility, liveness and the filter, as WHERE clauses."""
    where = [visible(principal), live()]
    if f is None:
        return where
    for condition in f.metadata:
        where.append(_metadata(condition))
    if f.types:
        where.append(Memory.type.in_(f.types))
    if f.scope is not None:
        where.append(Memory.scope == f.scope)
    if f.scope_id is not None:
        where.append(Memory.scope_id == f.scope_id)
    if f.min_confidence is not None:
        where.append(Memory.confidence >= f.min_confidence)
    if f.created_after is not None:
        where.append(Memory.created_at > f.created_after)
    return where
