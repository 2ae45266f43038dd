"""Hybrid search: pgvector HNSW (cosine) and PostgreSQL full text, fused by reciprocal
rank fusion, then weighted by recency, importance and confidence.

    score = RRF * (0.5 + 0.5 recency) * (0.5 + 0.5 importance) * (0.5 + 0.5 confidence)
    RRF = 1/(60 + vector rank) + 1/(60 + text rank)       (a missing rank adds 0)
    recency = 0.5 ^ (age / half-life of the memory's type)  (1 for types without one)

The text side matches memories holding every word of the query (``websearch_to_tsquery``:
quoted phrases, ``or`` and ``-word`` work). Each ranking takes ``memory_candidates`` rows.
The vector side runs with pgvector's iterative index scan
(``hnsw.iterative_scan = relaxed_order``), so a selective filter still fills the
candidates instead of returning the few that survive the first index pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.config import Settings
from cognitionos.db.models import Memory
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BadUserInput
from cognitionos.services.memory.filters import MemoryFilter, conditions

__all__ = ["RRF_K", "MemoryHit", "check_search", "search_memories"]

RRF_K = 60
MAX_LIMIT = 100


@dataclass
class MemoryHit:
    memory: Memory
    score: float
    similarity: float  # cosine similarity to the query
    rank: int  # 1-based position in the answer
    vector_rank: int | None  # position in the vector ranking, if it was a candidate there
    text_rank: int | None  # position in the full-text ranking, if it matched
    recency: float


def _recency(settings: Settings, memory: Memory, now: datetime) -> float:
    half_life = settings.memory_half_lives.get(memory.type.value)
    if not half_life:
        return 1.0
    age = max(0.0, (now - memory.created_at).total_seconds())
    return math.pow(0.5, age / half_life)


def check_search(query: str, limit: int) -> None:
    """Refuse what cannot be searched, before anything is embedded."""
    if not query.strip():
        raise BadUserInput("the query is empty", field="query")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadUserInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")


async def search_memories(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    query: str,
    vector: list[float],
    limit: int,
    filter: MemoryFilter | None,
) -> list[MemoryHit]:
    check_search(query, limit)
    where = conditions(principal, filter)
    pool = max(settings.memory_candidates, limit)
    # Both settings last for this transaction only (one round trip for the two).
    await session.execute(
        select(
            func.set_config("hnsw.iterative_scan", "relaxed_order", True),
            func.set_config("hnsw.ef_search", str(max(settings.memory_ef_search, pool)), True),
        )
    )

    distance = Memory.embedding.cosine_distance(vector)
    nearest = (
        select(Memory.id, distance.label("d"))
        .where(*where)
        .order_by(distance)
        .limit(pool)
        .cte("nearest")
    )
    by_vector = select(
        nearest.c.id, func.row_number().over(order_by=nearest.c.d).label("rank")
    ).cte("by_vector")
    # Every word of the query, web-search style ("quoted phrases", or, -word): precise, and
    # cheap at scale. An any-word (OR) query matched thousands of rows per search at 100k
    # memories and cost ~35 ms to rank; meaning is the vector side's job.
    tsquery = func.websearch_to_tsquery("english", query)
    relevance = func.ts_rank_cd(Memory.tsv, tsquery)
    matching = (
        select(Memory.id, relevance.label("r"))
        .where(*where, Memory.tsv.op("@@")(tsquery))
        .order_by(relevance.desc())
        .limit(pool)
        .cte("matching")
    )
    by_text = select(
        matching.c.id, func.row_number().over(order_by=matching.c.r.desc()).label("rank")
    ).cte("by_text")
    fused = (
        select(
            func.coalesce(by_vector.c.id, by_text.c.id).label("id"),
            by_vector.c.rank.label("vector_rank"),
            by_text.c.rank.label("text_rank"),
        )
        .select_from(by_vector.join(by_text, by_vector.c.id == by_text.c.id, full=True))
        .cte("fused")
    )
    rows = (
        await session.execute(
            select(Memory, fused.c.vector_rank, fused.c.text_rank, distance).join(
                fused, Memory.id == fused.c.id
            )
        )
    ).all()
    now = datetime.now(UTC)
    scored: list[tuple[float, Memory, Any, Any, float, float]] = []
    for memory, vector_rank, text_rank, dist in rows:
        rrf = (1 / (RRF_K + vector_rank) if vector_rank else 0.0) + (
            1 / (RRF_K + text_rank) if text_rank else 0.0
        )
        recency = _recency(settings, memory, now)
        score = (
            rrf
            * (0.5 + 0.5 * recency)
            * (0.5 + 0.5 * memory.importance)
            * (0.5 + 0.5 * memory.confidence)
        )
        scored.append((score, memory, vector_rank, text_rank, 1 - float(dist), recency))
    scored.sort(key=lambda s: (-s[0], -s[4]))
    return [
        MemoryHit(
            memory=memory,
            score=score,
            similarity=similarity,
            rank=position,
            vector_rank=vector_rank,
            text_rank=text_rank,
            recency=recency,
        )
        for position, (score, memory, vector_rank, text_rank, similarity, recency) in enumerate(
            scored[:limit], start=1
        )
    ]
