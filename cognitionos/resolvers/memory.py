"""Memory resolvers: store, change, forget, list, search, remember, consolidate."""

from __future__ import annotations

import strawberry
from strawberry import Info

from cognitionos.context import Context
from cognitionos.db.models import MemoryScope
from cognitionos.schema.common import connection_from_page, parse_id, to_spec
from cognitionos.schema.memory import (
    ConsolidationResult,
    ConversationMessageInput,
    Memory,
    MemoryConnection,
    MemoryEventType,
    MemoryFilterInput,
    MemoryHitType,
    StoreMemoryInput,
    UpdateMemoryInput,
)
from cognitionos.schema.permissions import IsMember, IsViewer
from cognitionos.services.memory import MemoryFilter, MemoryInput, MemoryPatch
from cognitionos.services.memory.extraction import consolidate_memories, remember_conversation

__all__ = ["MemoryMutation", "MemoryQuery"]


def _filter(filter: MemoryFilterInput | None) -> MemoryFilter | None:
    return to_spec(MemoryFilter, filter, "filter") if filter is not None else None


@strawberry.type
class MemoryQuery:
    @strawberry.field(permission_classes=[IsViewer])
    async def memory(self, info: Info[Context, None], id: strawberry.ID) -> Memory:
        ctx = info.context
        row = await ctx.services.memory.get(ctx.require_principal(), parse_id(id, "id"))
        return Memory.from_model(row)

    @strawberry.field(permission_classes=[IsViewer], description="Newest first.")
    async def memories(
        self,
        info: Info[Context, None],
        filter: MemoryFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> MemoryConnection:
        ctx = info.context
        page = await ctx.services.memory.page(
            ctx.require_principal(), _filter(filter), first, after
        )
        return connection_from_page(page, Memory.from_model)

    @strawberry.field(
        permission_classes=[IsViewer],
        description="Hybrid search (vector + full text, fused), best first; each hit says why.",
    )
    async def search_memories(
        self,
        info: Info[Context, None],
        query: str,
        limit: int = 10,
        filter: MemoryFilterInput | None = None,
    ) -> list[MemoryHitType]:
        ctx = info.context
        hits = await ctx.services.memory.search(
            ctx.require_principal(), query, limit, _filter(filter)
        )
        return [MemoryHitType.from_hit(h) for h in hits]


@strawberry.type
class MemoryMutation:
    @strawberry.mutation(
        permission_classes=[IsMember],
        description="Store a memory; a near-duplicate in the same scope is merged instead.",
    )
    async def store_memory(self, info: Info[Context, None], input: StoreMemoryInput) -> Memory:
        ctx = info.context
        stored = await ctx.services.memory.store(
            ctx.require_principal(), to_spec(MemoryInput, input)
        )
        return Memory.from_model(stored.memory, stored.outcome)

    @strawberry.mutation(permission_classes=[IsMember])
    async def update_memory(
        self, info: Info[Context, None], id: strawberry.ID, input: UpdateMemoryInput
    ) -> Memory:
        ctx = info.context
        row = await ctx.services.memory.update(
            ctx.require_principal(), parse_id(id, "id"), to_spec(MemoryPatch, input)
        )
        return Memory.from_model(row)

    @strawberry.mutation(permission_classes=[IsMember])
    async def forget_memory(self, info: Info[Context, None], id: strawberry.ID) -> bool:
        ctx = info.context
        return await ctx.services.memory.forget(ctx.require_principal(), parse_id(id, "id"))

    @strawberry.mutation(
        permission_classes=[IsMember],
        description="Extract facts from a conversation and ADD/UPDATE/DELETE memories (LLM).",
    )
    async def remember_conversation(
        self,
        info: Info[Context, None],
        messages: list[ConversationMessageInput],
        scope: MemoryScope = MemoryScope.USER,
        scope_id: str | None = None,
    ) -> list[MemoryEventType]:
        ctx = info.context
        events = await remember_conversation(
            ctx.services.memory,
            ctx.services.agents,
            principal=ctx.require_principal(),
            messages=[{"role": m.role, "content": m.content} for m in messages],
            scope=scope,
            scope_id=scope_id,
        )
        return [MemoryEventType.from_event(e) for e in events]

    @strawberry.mutation(
        permission_classes=[IsMember],
        description="The summarizer folds the scope's SHORT_TERM memories into LONG_TERM ones.",
    )
    async def consolidate_memories(
        self,
        info: Info[Context, None],
        scope: MemoryScope = MemoryScope.USER,
        scope_id: str | None = None,
    ) -> ConsolidationResult:
        ctx = info.context
        created, folded = await consolidate_memories(
            ctx.services.memory,
            ctx.services.agents,
            principal=ctx.require_principal(),
            scope=scope,
            scope_id=scope_id,
        )
        return ConsolidationResult(
            created=[Memory.from_model(m, o) for m, o in created], folded=folded
        )
