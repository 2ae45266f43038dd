"""MEMORY_STORE and MEMORY_SEARCH: the execution's owner stores or searches memories,
with the same rights as over the API."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import StrictInt, StrictStr
from sqlalchemy import select

from cognitionos.db.models import User
from cognitionos.services.auth import Principal
from cognitionos.services.errors import CognitionError
from cognitionos.services.inputs import MemoryFilter, MemoryInput
from cognitionos.services.workflows.ports import Memories
from cognitionos.services.workflows.steps.base import (
    Kind,
    StepConfig,
    StepContext,
    StepFailure,
    register,
)

__all__ = [
    "MemorySearchConfig",
    "MemorySearchStep",
    "MemoryStoreConfig",
    "MemoryStoreStep",
    "owner_principal",
]


def _memory(ctx: StepContext) -> Memories:
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


class MemoryStoreConfig(MemoryInput, StepConfig):
    """The memory to store, as ``storeMemory`` takes it."""


class MemorySearchConfig(StepConfig):
    query: StrictStr
    limit: StrictInt = 10
    filter: MemoryFilter | None = None


class MemoryStoreStep(Kind):
    name: ClassVar[str] = "MEMORY_STORE"
    config_model = MemoryStoreConfig
    templated: ClassVar[tuple[str, ...]] = ("content", "scopeId", "metadata")

    async def run(self, ctx: StepContext, raw: dict[str, Any]) -> Any:
        memory = _memory(ctx)
        data = MemoryStoreConfig.read(raw)
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


class MemorySearchStep(Kind):
    name: ClassVar[str] = "MEMORY_SEARCH"
    config_model = MemorySearchConfig
    templated: ClassVar[tuple[str, ...]] = ("query", "filter")

    async def run(self, ctx: StepContext, raw: dict[str, Any]) -> Any:
        memory = _memory(ctx)
        config = MemorySearchConfig.read(raw)
        try:
            hits = await memory.search(
                await owner_principal(ctx), config.query, config.limit, config.filter
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
