"""GraphQL types for memories and their search."""

from __future__ import annotations

from datetime import datetime

import strawberry

from cognitionos.db import models
from cognitionos.db.models import MemoryScope, MemoryType
from cognitionos.schema.common import JSON, Connection
from cognitionos.services.memory import MemoryFilter, MemoryHit, MetadataCondition, StoreOutcome
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


@strawberry.input(name="MetadataCondition")
class MetadataConditionInput:
    key: str
    eq: JSON | None = None
    in_: list[JSON] | None = strawberry.field(default=None, name="in")
    contains: JSON | None = None
    gt: JSON | None = None
    gte: JSON | None = None
    lt: JSON | None = None
    lte: JSON | None = None

    def to_condition(self) -> MetadataCondition:
        return MetadataCondition(
            key=self.key,
            eq=self.eq,
            in_=list(self.in_) if self.in_ is not None else None,
            contains=self.contains,
            gt=self.gt,
            gte=self.gte,
            lt=self.lt,
            lte=self.lte,
        )


@strawberry.input(name="MemoryFilter")
class MemoryFilterInput:
    types: list[MemoryType] | None = None
    scope: MemoryScope | None = None
    scope_id: str | None = None
    min_confidence: float | None = None
    metadata: list[MetadataConditionInput] | None = None
    created_after: datetime | None = None

    def to_filter(self) -> MemoryFilter:
        return MemoryFilter(
            types=self.types,
            scope=self.scope,
            scope_id=self.scope_id,
            min_confidence=self.min_confidence,
            metadata=[c.to_condition() for c in self.metadata or []],
            created_after=self.created_after,
        )


@strawberry.input
class StoreMemoryInput:
    content: str
    type: MemoryType = MemoryType.LONG_TERM
    scope: MemoryScope = MemoryScope.USER
    scope_id: str | None = None
    importance: float = 0.5
    confidence: float = 1.0
    metadata: JSON | None = None
    ttl_seconds: int | None = strawberry.field(
        default=None, description="Default: settings for WORKING and SHORT_TERM, none otherwise."
    )


@strawberry.input
class UpdateMemoryInput:
    content: str | None = None
    type: MemoryType | None = None
    importance: float | None = None
    confidence: float | None = None
    metadata: JSON | None = strawberry.field(default=None, description="Replaces the metadata.")
    ttl_seconds: int | None = None


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
