"""Memory below the API: filtered HNSW search, dimension checks, re-embedding, purging."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from cognitionos.db import create_engine, create_sessionmaker
from cognitionos.db.models import Memory, MemoryScope, MemoryType, Role, User
from cognitionos.services.auth import Principal
from cognitionos.services.memory import (
    MemoryFilter,
    MemoryInput,
    MemoryService,
    MemoryUnavailable,
    purge_expired,
)
from cognitionos.services.memory.embeddings import WordLlamaEmbedder
from cognitionos.services.memory.reembed import reembed
from tests.conftest import Stack

TOPICS = ["sailing", "cooking", "astronomy", "gardening", "chess", "jazz", "cycling", "poetry"]


@pytest.fixture
async def sessionmaker(stack: Stack) -> AsyncIterator[Any]:
    engine = create_engine(stack.database_url, pool_size=2)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def owner(sessionmaker: Any) -> Principal:
    user_id = uuid.uuid4()
    async with sessionmaker() as session:
        session.add(User(id=user_id, email=f"{user_id}@example.com", password_hash="x"))
        await session.commit()
    return Principal(user_id=user_id, role=Role.MEMBER)


async def bulk(sessionmaker: Any, owner: Principal, count: int) -> None:
    """``count`` memories; every 20th is EPISODIC (5 %), the rest LONG_TERM."""
    embedder = WordLlamaEmbedder(256)
    texts = [f"note {i} about {TOPICS[i % len(TOPICS)]} and weekend plans" for i in range(count)]
    vectors = await embedder.embed(texts)
    rows = [
        {
            "id": uuid.uuid4(),
            "owner_id": owner.user_id,
            "scope": MemoryScope.USER,
            "type": MemoryType.EPISODIC if i % 20 == 0 else MemoryType.LONG_TERM,
            "content": content,
            "embedding": vector,
            "embedder": embedder.name,
            "importance": 0.5,
            "confidence": 1.0,
            "access_count": 0,
            "extra": {"i": i},
        }
        for i, (content, vector) in enumerate(zip(texts, vectors, strict=True))
    ]
    async with sessionmaker() as session:
        await session.execute(insert(Memory), rows)
        await session.execute(text("ANALYZE memories"))
        await session.commit()


async def test_a_filter_matching_5_percent_still_fills_the_limit(
    stack: Stack, sessionmaker: Any, owner: Principal
) -> None:
    await bulk(sessionmaker, owner, 4000)
    # At a few thousand rows the planner would rather scan the table; at production sizes
    # it takes the HNSW index. Make it take the index here too, so that is what is tested.
    indexed = create_async_engine(
        stack.database_url.replace("postgresql+asyncpg", "postgresql+asyncpg"),
        connect_args={"server_settings": {"enable_seqscan": "off"}},
    )
    sessionmaker = create_sessionmaker(indexed)
    service = MemoryService(stack.settings(memory_candidates=40), sessionmaker)
    episodic = MemoryFilter(types=[MemoryType.EPISODIC])
    hits = await service.search(owner, "weekend sailing plans", 40, episodic)
    assert len(hits) == 40
    assert {h.memory.type for h in hits} == {MemoryType.EPISODIC}
    # The vector ranking alone supplied most of them (full text adds a few of its own).
    assert sum(h.vector_rank is not None for h in hits) >= 30

    # The same index scan without pgvector's iterative scan runs dry: few of the nearest
    # entries it visits pass the filter. (This also shows the index is what runs here.)
    (vector,) = await service.embedder.embed(["weekend sailing plans"])
    async with sessionmaker() as session:
        await session.execute(text("SET LOCAL hnsw.iterative_scan = off"))
        await session.execute(text("SET LOCAL hnsw.ef_search = 40"))
        plain = (
            await session.execute(
                select(Memory.id)
                .where(Memory.type == MemoryType.EPISODIC)
                .order_by(Memory.embedding.cosine_distance(vector))
                .limit(40)
            )
        ).all()
        plan = "\n".join(
            r[0]
            for r in await session.execute(
                text(
                    "EXPLAIN SELECT id FROM memories WHERE type = 'EPISODIC' "
                    "ORDER BY embedding <=> CAST(:v AS vector) LIMIT 40"
                ),
                {"v": str(vector)},
            )
        )
    await indexed.dispose()
    assert "ix_memories_embedding" in plan
    assert len(plain) < 20


async def test_a_dimension_change_needs_reembed_which_resumes_and_rebuilds(
    stack: Stack, sessionmaker: Any, owner: Principal
) -> None:
    await bulk(sessionmaker, owner, 300)
    small = MemoryService(stack.settings(memory_dim=128), sessionmaker)
    await small.start()
    with pytest.raises(MemoryUnavailable) as caught:
        await small.search(owner, "sailing", 5, None)
    assert "cognitionos memory reembed" in caught.value.message
    seen: list[tuple[int, int]] = []
    try:
        done = await reembed(
            sessionmaker, small.embedder, batch=128, progress=lambda d, t: seen.append((d, t))
        )
        assert done == 300 and seen[0] == (0, 300) and seen[-1] == (300, 300)
        fresh = MemoryService(stack.settings(memory_dim=128), sessionmaker)
        await fresh.start()
        hits = await fresh.search(owner, "chess", 3, None)
        assert len(hits) == 3 and "chess" in hits[0].memory.content
        async with sessionmaker() as session:
            index = await session.scalar(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_memories_embedding'")
            )
        assert index is not None and "hnsw" in index
        assert await reembed(sessionmaker, small.embedder) == 0  # nothing left to do
        await fresh.stop()
    finally:  # give the session's later tests their 256-dimension column back
        await reembed(sessionmaker, WordLlamaEmbedder(256))
        await small.stop()


async def test_purge_deletes_only_expired_memories(
    stack: Stack, sessionmaker: Any, owner: Principal
) -> None:
    service = MemoryService(stack.settings(), sessionmaker)
    kept = await service.store(
        owner, MemoryInput(content="Keep me around.", type=MemoryType.WORKING)
    )
    gone = await service.store(owner, MemoryInput(content="Forget this soon.", ttl_seconds=60))
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE memories SET expires_at = :at WHERE id = :id"),
            {"at": datetime.now(UTC) - timedelta(seconds=1), "id": gone.memory.id},
        )
        await session.commit()
        assert await purge_expired(session) == 1
    async with sessionmaker() as session:
        left = (await session.scalars(select(Memory.id))).all()
    assert left == [kept.memory.id]


async def test_the_openai_embedder_asks_for_the_deployment_dimension(
    stack: Stack, llm_fake: Any
) -> None:
    from cognitionos.services.memory import build_embedder

    embedder = build_embedder(stack.settings(memory_embedder="openai", **llm_fake.settings()))
    assert embedder.name == "openai-text-embedding-3-small:256"
    first, second = await embedder.embed(["tea in the morning", "coffee at night"])
    (sent,) = llm_fake.requests["openai"]
    assert sent["model"] == "text-embedding-3-small" and sent["dimensions"] == 256
    assert len(first) == 256 and abs(sum(x * x for x in first) - 1) < 1e-6
    assert first != second  # answers are put back in input order
    assert (await embedder.embed(["tea in the morning"]))[0] == pytest.approx(first)
    await embedder.aclose()
    with pytest.raises(Exception, match="OPENAI_API_KEY"):
        build_embedder(stack.settings(memory_embedder="openai"))
