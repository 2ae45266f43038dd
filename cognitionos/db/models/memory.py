"""Agent memory: content, its embedding (HNSW, cosine) and its full-text vector (GIN)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import Computed, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from cognitionos.db.base import Base, TimestampMixin, UUIDPrimaryKey, utcnow
from cognitionos.db.models.auth import _enum

__all__ = ["EMBEDDING_DIM", "Memory", "MemoryScope", "MemoryType"]

EMBEDDING_DIM = 256  # what the migration creates; `cognitionos memory reembed` changes it


class MemoryType(StrEnum):
    WORKING = "WORKING"
    SHORT_TERM = "SHORT_TERM"
    LONG_TERM = "LONG_TERM"
    EPISODIC = "EPISODIC"
    SEMANTIC = "SEMANTIC"


class MemoryScope(StrEnum):
    GLOBAL = "GLOBAL"
    USER = "USER"
    TASK = "TASK"
    SESSION = "SESSION"


class Memory(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "memories"
    __table_args__ = (
        Index("ix_memories_scope", "scope", "scope_id"),
        Index(
            "ix_memories_embedding",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        Index(
            "ix_memories_tsv", "tsv", postgresql_using="gin", postgresql_with={"fastupdate": "off"}
        ),
        Index(
            "ix_memories_metadata",
            "metadata",
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
            postgresql_with={"fastupdate": "off"},
        ),
        Index(
            "ix_memories_expires_at", "expires_at", postgresql_where=text("expires_at IS NOT NULL")
        ),
    )

    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[MemoryScope] = mapped_column(_enum(MemoryScope, "memory_scope"))
    scope_id: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[MemoryType] = mapped_column(_enum(MemoryType, "memory_type"))
    content: Mapped[str] = mapped_column(Text)
    # Deferred: loaded only when asked for (parsing 256 floats per row is not free).
    embedding: Mapped[Any] = mapped_column(Vector(EMBEDDING_DIM), deferred=True)
    embedder: Mapped[str] = mapped_column(String(100))
    tsv: Mapped[Any] = mapped_column(
        TSVECTOR, Computed("to_tsvector('english', content)", persisted=True), deferred=True
    )
    importance: Mapped[float] = mapped_column(default=0.5)
    confidence: Mapped[float] = mapped_column(default=1.0)
    access_count: Mapped[int] = mapped_column(default=0)
    last_accessed_at: Mapped[datetime | None]
    extra: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
