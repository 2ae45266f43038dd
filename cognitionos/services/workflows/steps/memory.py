"""MEMORY_STORE and MEMORY_SEARCH: the execution's owner stores or searches memories,
with the same rights as over the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import select

from cognitionos.db.models import MemoryScope, MemoryType, User
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BadUserInput, CognitionError
from cognitionos.services.memory import MemoryFilter, MemoryInput, MemoryService, MetadataCondition
from cognitionos.services.workflows.steps.base import (
    StepContext,
    StepFailure,
    enum_value,
    register,
    require_fields,
)

__all__ = ["MemorySearchStep", "MemoryStoreStep", "owner_principal"]


def _memory(ctx: StepContext) -> MemoryService:
    if ctx.memory is None:
        raise StepFailure("memory is not available in this worker", retryable=False)
    return ctx.memory


async def owner_principal(ctx: StepContext) -> Principal:
    """The execution's owner, with their current role."""
    async with ctx.sessionmaker() as session:
        role = await session.scalar(select(User.role).where(User.id == ctx.actor_id))
    if role is None or ctx.actor_id is None:
        raise StepFailure("the execution's owner no longer exists", retryable=False)
    return Principal(user_id=ctx.actor_id, role=role)


def _filter(raw: dict[str, Any] | None, field: str) -> MemoryFilter | None:
    if not raw:
        return None
    require_fields(
        raw,
        field,
        {},
        {
            "types": list,
            "scope": str,
            "scopeId": str,
            "minConfidence": (int, float),
            "metadata": list,
            "createdAfter": str,
        },
    )
    conditions = []
    for i, c in enumerate(raw.get("metadata") or []):
        if not isinstance(c, dict) or "key" not in c:
            raise BadUserInput(
                "a metadata condition is an object with a key", field=f"{field}.metadata[{i}]"
            )
        conditions.append(
            MetadataCondition(
                key=c["key"],
                eq=c.get("eq"),
                in_=c.get("in"),
                contains=c.get("contains"),
                gt=c.get("gt"),
                gte=c.get("gte"),
                lt=c.get("lt"),
                lte=c.get("lte"),
            )
        )
    after = raw.get("createdAfter")
    return MemoryFilter(
        types=[enum_value(MemoryType, t, f"{field}.types") for t in raw.get("types") or []] or None,
        scope=enum_value(MemoryScope, raw["scope"], f"{field}.scope") if raw.get("scope") else None,
        scope_id=raw.get("scopeId"),
        min_confidence=raw.get("minConfidence"),
        metadata=conditions,
        created_after=datetime.fromisoformat(after) if after else None,
    )


class MemoryStoreStep:
    name: ClassVar[str] = "MEMORY_STORE"
    templated: ClassVar[tuple[str, ...]] = ("content", "scopeId", "metadata")
    waits_for_approval: ClassVar[bool] = False
    inline: ClassVar[bool] = False

    def validate(self, config: dict[str, Any], *, field: str) -> None:
        require_fields(
            config,
            field,
            {"content": str},
            {
                "type": str,
                "scope": str,
                "scopeId": str,
                "importance": (int, float),
                "confidence": (int, float),
                "metadata": dict,
                "ttlSeconds": int,
            },
        )
        if "type" in config:
            enum_value(MemoryType, config["type"], f"{field}.type")
        if "scope" in config:
            enum_value(MemoryScope, config["scope"], f"{field}.scope")

    async def run(self, ctx: StepContext, config: dict[str, Any]) -> Any:
        memory = _memory(ctx)
        data = MemoryInput(
            content=str(config["content"]),
            type=MemoryType(config.get("type", MemoryType.LONG_TERM)),
            scope=MemoryScope(config.get("scope", MemoryScope.USER)),
            scope_id=config.get("scopeId"),
            importance=float(config.get("importance", 0.5)),
            confidence=float(config.get("confidence", 1.0)),
            metadata=dict(config.get("metadata") or {}),
            ttl_seconds=config.get("ttlSeconds"),
        )
        try:
            stored = await memory.store(await owner_principal(ctx), data)
        except CognitionError as exc:
            raise StepFailure(f"{exc.code}: {exc.message}", retryable=False) from None
        m = stored.memory
        return {
            "id": str(m.id),
            "content": m.content,
            "type": m.type.value,
            "scope": m.scope.value,
            "scopeId": m.scope_id,
            "outcome": stored.outcome.value,
        }


class MemorySearchStep:
    name: ClassVar[str] = "MEMORY_SEARCH"
    templated: ClassVar[tuple[str, ...]] = ("query", "filter")
    waits_for_approval: ClassVar[bool] = False
    inline: ClassVar[bool] = False

    def validate(self, config: dict[str, Any], *, field: str) -> None:
        require_fields(config, field, {"query": str}, {"limit": int, "filter": dict})
        _filter(config.get("filter"), f"{field}.filter")

    async def run(self, ctx: StepContext, config: dict[str, Any]) -> Any:
        memory = _memory(ctx)
        try:
            hits = await memory.search(
                await owner_principal(ctx),
                str(config["query"]),
                int(config.get("limit", 10)),
                _filter(config.get("filter"), "config.filter"),
            )
        except CognitionError as exc:
            raise StepFailure(f"{exc.code}: {exc.message}", retryable=False) from None
        return [
            {
                "id": str(h.memory.id),
                "content": h.memory.content,
                "type": h.memory.type.value,
                "metadata": h.memory.extra,
                "score": h.score,
                "similarity": h.similarity,
                "rank": h.rank,
            }
            for h in hits
        ]


register(MemoryStoreStep())
register(MemorySearchStep())
