"""Storing, changing, reading and forgetting memories."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.config import Settings
from cognitionos.db.models import Memory, MemoryScope, MemoryType
from cognitionos.services.auth import Principal
from cognitionos.services.errors import NotFound
from cognitionos.services.inputs import Content, MemoryInput, Seconds, Share
from cognitionos.services.memory.embeddings import Embedder
from cognitionos.services.memory.filters import (
    MemoryFilter,
    can_write,
    check_readable,
    conditions,
    live,
)
from cognitionos.services.pagination import Page, paginate
from cognitionos.services.specs import Spec

__all__ = [
    "MemoryInput",
    "MemoryPatch",
    "StoreOutcome",
    "Stored",
    "forget_memory",
    "get_memory",
    "list_memories",
    "purge_expired",
    "store_memory",
    "update_memory",
]


class StoreOutcome(StrEnum):
    CREATED = "CREATED"
    MERGED = "MERGED"  # a near-duplicate in the same scope was updated instead


class MemoryPatch(Spec):
    """``updateMemory``'s input: None leaves a field as it is."""

    content: Content | None = None
    type: MemoryType | None = None
    importance: Share | None = None
    confidence: Share | None = None
    metadata: dict[str, Any] | None = Field(None, description="Replaces the metadata.")
    ttl_seconds: Seconds | None = None


@dataclass
class Stored:
    memory: Memory
    outcome: StoreOutcome
    similarity: float | None = None  # to the memory it merged into


def _default_ttl(settings: Settings, kind: MemoryType) -> int | None:
    if kind is MemoryType.WORKING:
        return settings.memory_working_ttl_seconds
    if kind is MemoryType.SHORT_TERM:
        return settings.memory_short_term_ttl_seconds
    return None


def _expiry(settings: Settings, kind: MemoryType, ttl: int | None) -> datetime | None:
    seconds = ttl if ttl is not None else _default_ttl(settings, kind)
    return datetime.now(UTC) + timedelta(seconds=seconds) if seconds else None


async def _nearest(
    session: AsyncSession, owner: uuid.UUID | None, data: MemoryInput, vector: list[float]
) -> tuple[Memory, float] | None:
    distance = Memory.embedding.cosine_distance(vector)
    stmt = (
        select(Memory, distance)
        .where(
            Memory.scope == data.scope,
            Memory.scope_id.is_not_distinct_from(data.scope_id),
            live(),
        )
        .order_by(distance)
        .limit(1)
        .with_for_update(of=Memory)
    )
    if data.scope is not MemoryScope.GLOBAL:
        stmt = stmt.where(Memory.owner_id == owner)
    row = (await session.execute(stmt)).first()
    return (row[0], 1 - float(row[1])) if row else None


async def store_memory(
    session: AsyncSession,
    *,
    settings: Settings,
    embedder: Embedder,
    principal: Principal,
    data: MemoryInput,
    vector: list[float] | None = None,
) -> Stored:
    """Store, or merge into a near-duplicate (cosine ≥ the threshold, same scope). Commits."""
    can_write(data.scope, None, principal)
    if vector is None:
        (vector,) = await embedder.embed([data.content])
    owner = principal.user_id
    # One writer per scope at a time, so two identical stores cannot both create.
    holder = "" if data.scope is MemoryScope.GLOBAL else owner
    key = f"memory:{holder}:{data.scope}:{data.scope_id}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
    await session.execute(text(f"SET LOCAL hnsw.ef_search = {int(settings.memory_ef_search)}"))
    near = await _nearest(session, owner, data, vector)
    now = datetime.now(UTC)
    if near is not None and near[1] >= settings.memory_dedup_threshold:
        memory, similarity = near
        memory.confidence = min(1.0, max(memory.confidence, data.confidence) + 0.1)
        memory.importance = max(memory.importance, data.importance)
        memory.access_count += 1
        memory.last_accessed_at = now
        memory.extra = {**memory.extra, **(data.metadata or {})}
        expiry = _expiry(settings, data.type, data.ttl_seconds)
        if memory.expires_at is not None:
            memory.expires_at = None if expiry is None else max(memory.expires_at, expiry)
        memory.updated_at = now
        await session.commit()
        return Stored(memory, StoreOutcome.MERGED, similarity)
    memory = Memory(
        owner_id=owner,
        scope=data.scope,
        scope_id=data.scope_id,
        type=data.type,
        content=data.content,
        embedding=vector,
        embedder=embedder.name,
        importance=data.importance,
        confidence=data.confidence,
        extra=data.metadata or {},
        expires_at=_expiry(settings, data.type, data.ttl_seconds),
        updated_at=now,
    )
    session.add(memory)
    await session.commit()
    return Stored(memory, StoreOutcome.CREATED)


async def get_memory(
    session: AsyncSession, *, principal: Principal, memory_id: uuid.UUID
) -> Memory:
    memory = await session.scalar(select(Memory).where(Memory.id == memory_id, live()))
    if memory is None:
        raise NotFound("no such memory (or it expired)")
    check_readable(memory, principal)
    return memory


async def update_memory(
    session: AsyncSession,
    *,
    settings: Settings,
    embedder: Embedder,
    principal: Principal,
    memory_id: uuid.UUID,
    patch: MemoryPatch,
) -> Memory:
    memory = await session.scalar(
        select(Memory).where(Memory.id == memory_id, live()).with_for_update()
    )
    if memory is None:
        raise NotFound("no such memory (or it expired)")
    check_readable(memory, principal)
    can_write(memory.scope, memory.owner_id, principal)
    if patch.content is not None:
        (memory.embedding,) = await embedder.embed([patch.content])
        memory.content, memory.embedder = patch.content, embedder.name
    if patch.type is not None:
        memory.type = patch.type
    if patch.importance is not None:
        memory.importance = patch.importance
    if patch.confidence is not None:
        memory.confidence = patch.confidence
    if patch.metadata is not None:
        memory.extra = patch.metadata
    if patch.ttl_seconds is not None:
        memory.expires_at = datetime.now(UTC) + timedelta(seconds=patch.ttl_seconds)
    memory.updated_at = datetime.now(UTC)
    await session.commit()
    return memory


async def forget_memory(
    session: AsyncSession, *, principal: Principal, memory_id: uuid.UUID
) -> bool:
    memory = await session.get(Memory, memory_id, with_for_update=True)
    if memory is None:
        return False
    check_readable(memory, principal)
    can_write(memory.scope, memory.owner_id, principal)
    await session.delete(memory)
    await session.commit()
    return True


async def list_memories(
    session: AsyncSession,
    *,
    principal: Principal,
    filter: MemoryFilter | None,
    first: int | None,
    after: str | None,
) -> Page[Memory]:
    stmt = select(Memory).where(*conditions(principal, filter))
    return await paginate(session, Memory, stmt, first=first, after=after)


async def purge_expired(session: AsyncSession, *, batch: int = 5000) -> int:
    """Delete expired memories (a batch per call). Commits."""
    doomed = (
        select(Memory.id)
        .where(Memory.expires_at <= datetime.now(UTC))
        .limit(batch)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(delete(Memory).where(Memory.id.in_(doomed)))
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
