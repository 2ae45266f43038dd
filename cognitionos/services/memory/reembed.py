"""Re-embed every memory after a change of embedder or dimension.

Resumable: it works through the rows whose vector is missing or came from another
embedder, so running it again after an interruption picks up where it stopped. On a
dimension change the column is retyped first (vectors cleared), the HNSW index is
rebuilt at the end. Searches fail with MEMORY_UNAVAILABLE until it has finished.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import cast

from sqlalchemy import Table, bindparam, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.db.models import Memory
from cognitionos.services.memory.embeddings import Embedder
from cognitionos.services.memory.service import column_dimension

__all__ = ["reembed"]

Progress = Callable[[int, int], None]


async def reembed(
    sessionmaker: async_sessionmaker[AsyncSession],
    embedder: Embedder,
    *,
    batch: int = 256,
    progress: Progress | None = None,
) -> int:
    """Returns how many memories were re-embedded."""
    async with sessionmaker() as session:
        dim = await column_dimension(session)
        if dim is None:
            raise RuntimeError("the memories table does not exist: run `cognitionos migrate`")
        await session.execute(text("DROP INDEX IF EXISTS ix_memories_embedding"))
        if dim != embedder.dim:
            await session.execute(text("ALTER TABLE memories ALTER COLUMN embedding DROP NOT NULL"))
            await session.execute(
                text(
                    f"ALTER TABLE memories ALTER COLUMN embedding TYPE vector({int(embedder.dim)}) "
                    "USING NULL"
                )
            )
        await session.commit()
    stale = or_(Memory.embedding.is_(None), Memory.embedder != embedder.name)
    async with sessionmaker() as session:
        total = await session.scalar(select(func.count()).select_from(Memory).where(stale)) or 0
    done = 0
    last = uuid.UUID(int=0)
    if progress:
        progress(0, total)
    while True:
        async with sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Memory.id, Memory.content)
                    .where(stale, Memory.id > last)
                    .order_by(Memory.id)
                    .limit(batch)
                )
            ).all()
            if not rows:
                break
            vectors = await embedder.embed([r.content for r in rows])
            table = cast(Table, Memory.__table__)
            connection = await session.connection()
            await connection.execute(
                table.update()
                .where(table.c.id == bindparam("row_id"))
                .values(embedding=bindparam("vector"), embedder=embedder.name),
                [{"row_id": r.id, "vector": v} for r, v in zip(rows, vectors, strict=True)],
            )
            await session.commit()
        last = rows[-1].id
        done += len(rows)
        if progress:
            progress(done, total)
    async with sessionmaker() as session:
        await session.execute(text("ALTER TABLE memories ALTER COLUMN embedding SET NOT NULL"))
        await session.execute(
            text(
                "CREATE INDEX IF NOT EXISTS ix_memories_embedding ON memories "
                "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
            )
        )
        await session.commit()
    return done
