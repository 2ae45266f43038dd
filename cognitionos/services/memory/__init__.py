"""Multi-layer agent memory on PostgreSQL: pgvector HNSW + full text, fused."""

from __future__ import annotations

from cognitionos.services.memory.embeddings import Embedder, build_embedder
from cognitionos.services.memory.filters import MemoryFilter, MetadataCondition
from cognitionos.services.memory.search import MemoryHit, search_memories
from cognitionos.services.memory.service import MemoryService, MemoryUnavailable
from cognitionos.services.memory.store import (
    MemoryInput,
    MemoryPatch,
    Stored,
    StoreOutcome,
    purge_expired,
    store_memory,
)

__all__ = [
    "Embedder",
    "MemoryFilter",
    "MemoryHit",
    "MemoryInput",
    "MemoryPatch",
    "MemoryService",
    "MemoryUnavailable",
    "MetadataCondition",
    "StoreOutcome",
    "Stored",
    "build_embedder",
    "purge_expired",
    "search_memories",
    "store_memory",
]
