"""GraphQL types for memories and their search."""

from __future__ import annotations

from datetime import datetime

import strawberry

from cognitionos.db import models
from cognitionos.db.models import MemoryScope, MemoryType
from cognitionos.schema.common import JSON, Connection
from cognitionos.services.memory import (
    MemoryFilter,
    MemoryHit,
    MemoryInput,
    MemoryPatch,
    MetadataCondition,
    StoreOutcome,
)
from cognitionos.services.memory.extraction import MemoryChange, MemoryEvent

__all__ = [
    "ConsolidationResult",
    "ConversationMessageInput",
    "Memory",
    "MemoryConnection",
    "MemoryEventType",
    "MemoryFilterInput",
    "MemoryHitType",
    "MetadataConditionInput",
    "StoreMemoryInput",
    "UpdateMemoryInput",
]

strawberry.enum(MemoryType, name="MemoryType")
strawberry.enum(MemoryScope, name="MemoryScope")
strawberry.enum(StoreOutcome, name="StoreOutcome")


@strawberry.type
class Memory:
    id: strawberry.ID
    owner_id: strawberry.ID | None
    content: str
    type: MemoryType
    scope: MemoryScope
    scope_id: str | None
    importance: float
    confidence: float
    access_count: int
    last_accessed_at: datetime | None
    metadata: JSON
    embedder: str
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    store_outcome: StoreOutcome | None = strawberry.field(
        default=None,
        description="In storeMemory's answer: CREATED, or MERGED into a near-duplicate.",
    )

    @classmethod
    def from_model(cls, row: models.Memory, outcome: StoreOutcome | None = None) -> Memory:
        return cls(
            id=strawberry.ID(str(row.id)),
            owner_id=strawberry.ID(str(row.owner_id)) if row.owner_id else None,
            content=row.content,
            type=row.type,
            scope=row.scope,
            scope_id=row.scope_id,
            importance=row.importance,
            confidence=row.confidence,
            access_count=row.access_count,
            last_accessed_at=row.last_accessed_at,
            metadata=JSON(row.extra or {}),
            embedder=row.embedder,
            expires_at=row.expires_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            store_outcome=outcome,
        )


MemoryConnection = Connection[Memory]


@strawberry.type(name="MemoryHit")
class MemoryHitType:
    memory: Memory
    score: float = strawberry.field(description="The fused, weighted score hits are sorted by.")
    similarity: float = strawberry.field(description="Cosine similarity to the query.")
    rank: int
    vector_rank: int | None = strawberry.field(description="Position in the vector ranking.")
    text_rank: int | None = strawberry.field(description="Position in the full-text ranking.")
    recency: float = strawberry.field(description="The recency weight, 1 = new.")

    @classmethod
    def from_hit(cls, hit: MemoryHit) -> MemoryHitType:
        return cls(
            memory=Memory.from_model(hit.memory),
            score=hit.score,
            similarity=hit.similarity,
            rank=hit.rank,
            vector_rank=hit.vector_rank,
            text_rank=hit.text_rank,
            recency=hit.recency,
        )


# The models' ``Any`` values (and their JSON objects) are JSON here.
@strawberry.experimental.pydantic.input(
    model=MetadataCondition, all_fields=True, name="MetadataCondition"
)
class MetadataConditionInput:
    eq: JSON | None
    in_: list[JSON] | None
    contains: JSON | None
    gt: JSON | None
    gte: JSON | None
    lt: JSON | None
    lte: JSON | None


@strawberry.experimental.pydantic.input(model=MemoryFilter, all_fields=True, name="MemoryFilter")
class MemoryFilterInput:
    metadata: list[MetadataConditionInput] | None


@strawberry.experimental.pydantic.input(model=MemoryInput, all_fields=True)
class StoreMemoryInput:
    metadata: JSON | None


@strawberry.experimental.pydantic.input(model=MemoryPatch, all_fields=True)
class UpdateMemoryInput:
    metadata: JSON | None


strawberry.enum(MemoryEvent, name="MemoryEventKind")


@strawberry.input(name="ConversationMessage")
class ConversationMessageInput:
    role: str = strawberry.field(description="user or assistant")
    content: str


@strawberry.type(name="MemoryEvent")
class MemoryEventType:
    event: MemoryEvent
    memory: Memory | None
    previous_content: str | None

    @classmethod
    def from_event(cls, e: MemoryChange) -> MemoryEventType:
        return cls(
            event=e.event,
            memory=Memory.from_model(e.memory) if e.memory is not None else None,
            previous_content=e.previous_content,
        )


@strawberry.type
class ConsolidationResult:
    created: list[Memory]
    folded: int = strawberry.field(description="SHORT_TERM memories folded (and removed).")
