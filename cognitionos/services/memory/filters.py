"""Who may see a memory, and the filters ``memories`` and ``searchMemories`` share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, StrictStr, ValidationInfo, model_validator
from sqlalchemy import ColumnElement, Numeric, and_, cast, func, literal, or_, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from cognitionos.db.models import Memory, MemoryScope, MemoryType
from cognitionos.services.auth import Principal
from cognitionos.services.errors import Forbidden
from cognitionos.services.specs import Number, Spec, WhenRendered, spec_error

__all__ = [
    "MemoryFilter",
    "MetadataCondition",
    "can_write",
    "check_readable",
    "conditions",
    "live",
    "visible",
]

_OPS = ("eq", "in_", "contains", "gt", "gte", "lt", "lte")


def _bound(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise spec_error(f"{info.field_name} takes a number or a string")
    return value


Bound = Annotated[Any, AfterValidator(_bound)]


class MetadataCondition(Spec):
    """One test on ``metadata[key]``: equality, membership (``in``), containment (an
    array holding the value(s), or a string holding the substring) and ranges (numbers
    compare as numbers, strings — ISO-8601 dates — as text)."""

    key: StrictStr
    eq: Any = None
    in_: list[Any] | None = Field(None, alias="in")
    contains: Any = None
    gt: Bound = None
    gte: Bound = None
    lt: Bound = None
    lte: Bound = None

    @model_validator(mode="after")
    def _tests_something(self) -> Self:
        if not self.key:
            raise spec_error("a metadata condition needs a key", field="key")
        if all(getattr(self, op) is None for op in _OPS):
            raise spec_error("a metadata condition needs one of eq, in, contains, gt, gte, lt, lte")
        return self


class MemoryFilter(Spec):
    """What ``memories`` and ``searchMemories`` (and a MEMORY_SEARCH step) narrow to."""

    types: list[MemoryType] | None = None
    scope: MemoryScope | None = None
    scope_id: StrictStr | None = None
    min_confidence: Number | None = None
    metadata: list[MetadataCondition] = []
    created_after: Annotated[datetime | None, WhenRendered] = None


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
