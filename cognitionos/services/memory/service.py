"""One object per process holding what memory operations need: the embedder, the access
tracker, the router (for extraction and consolidation) and the column's dimension check."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.db.models import Memory
from cognitionos.observability.metrics import Metrics
from cognitionos.services.auth import Principal
from cognitionos.services.errors import CognitionError
from cognitionos.services.memory.access import AccessTracker
from cognitionos.services.memory.embeddings import Embedder, build_embedder
from cognitionos.services.memory.filters import MemoryFilter
from cognitionos.services.memory.search import MemoryHit, check_search, search_memories
from cognitionos.services.memory.store import (
    MemoryInput,
    MemoryPatch,
    Stored,
    forget_memory,
    get_memory,
    list_memories,
    store_memory,
    update_memory,
)
from cognitionos.services.pagination import Page

__all__ = ["MemoryService", "MemoryUnavailable", "column_dimension"]


class MemoryUnavailable(CognitionError):
    """The embedder and the stored vectors disagree (a changed dimension or embedder)."""

    code = "MEMORY_UNAVAILABLE"


async def column_dimension(session: AsyncSession) -> int | None:
    """The dimension of ``memories.embedding`` (None: the table is missing)."""
    dim: int | None = await session.scalar(
        text(
            "SELECT atttypmod FROM pg_attribute "
            "WHERE attrelid = to_regclass('memories') AND attname = 'embedding'"
        )
    )
    return dim


class MemoryService:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        embedder: Embedder | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessionmaker = sessionmaker
        self.embedder = embedder or build_embedder(settings)
        self.tracker = AccessTracker(sessionmaker)
        self.problem: str | None = None

    async def start(self) -> None:
        """Check the stored vectors fit the embedder; start the access tracker."""
        async with self.sessionmaker() as session:
            dim = await column_dimension(session)
        if dim is not None and dim != self.embedder.dim:
            self.problem = (
                f"stored memories have {dim} dimensions but the embedder makes "
                f"{self.embedder.dim} (COGNITIONOS_MEMORY_DIM); run `cognitionos memory reembed`"
            )
        self.tracker.start()

    async def stop(self) -> None:
        await self.tracker.stop()
        await self.embedder.aclose()

    def _usable(self) -> None:
        if self.problem:
            raise MemoryUnavailable(self.problem)

    @contextlib.contextmanager
    def _timed(self, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            if self.metrics is not None:
                elapsed = time.perf_counter() - started
                self.metrics.memory_duration.labels(operation).observe(elapsed)

    async def store(self, principal: Principal, data: MemoryInput) -> Stored:
        self._usable()
        with self._timed("store"):
            async with self.sessionmaker() as session:
                return await store_memory(
                    session,
                    settings=self.settings,
                    embedder=self.embedder,
                    principal=principal,
                    data=data,
                )

    async def update(
        self, principal: Principal, memory_id: uuid.UUID, patch: MemoryPatch
    ) -> Memory:
        self._usable()
        async with self.sessionmaker() as session:
            return await update_memory(
                session,
                settings=self.settings,
                embedder=self.embedder,
                principal=principal,
                memory_id=memory_id,
                patch=patch,
            )

    async def forget(self, principal: Principal, memory_id: uuid.UUID) -> bool:
        async with self.sessionmaker() as session:
            return await forget_memory(session, principal=principal, memory_id=memory_id)

    async def get(self, principal: Principal, memory_id: uuid.UUID) -> Memory:
        async with self.sessionmaker() as session:
            return await get_memory(session, principal=principal, memory_id=memory_id)

    async def page(
        self,
        principal: Principal,
        filter: MemoryFilter | None,
        first: int | None,
        after: str | None,
    ) -> Page[Memory]:
        async with self.sessionmaker() as session:
            return await list_memories(
                session, principal=principal, filter=filter, first=first, after=after
            )

    async def search(
        self, principal: Principal, query: str, limit: int, filter: MemoryFilter | None
    ) -> list[MemoryHit]:
        self._usable()
        check_search(query, limit)
        with self._timed("search"):
            (vector,) = await self.embedder.embed([query])
            async with self.sessionmaker() as session:
                hits = await search_memories(
                    session,
                    settings=self.settings,
                    principal=principal,
                    query=query,
                    vector=vector,
                    limit=limit,
                    filter=filter,
                )
                await session.commit()
        self.tracker.touch([h.memory.id for h in hits])
        return hits
