"""Memory at scale: HNSW recall and search latency against exact scan, in one run.

Builds N memories (default 100,000) from a synthetic corpus with known topic structure
(100 topics, each a set of words; a memory is a sample of its topic's words plus two
common ones; a random 5 % are EPISODIC, for the filtered searches). Reports:

* store throughput: through the service one at a time (embedding, near-duplicate check,
  HNSW upkeep), and in bulk (batched embedding + multi-row insert, then the index build);
* recall@10 of the HNSW vector search against an exact scan, over 200 new queries;
* p50/p95 of the search SQL alone and of ``searchMemories`` end to end (GraphQL over HTTP,
  query embedding included), unfiltered and filtered to the 5 %, against the exact scan;
* the search SQL of members of a many-tenant table (1,000 members with 20 memories each),
  whose visibility filter leaves each of them a sliver of the rows.

Usage: python bench/memory.py [N]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support's live server

import wordllama
from _stack import embedded_stack
from sqlalchemy import insert, select, text

from cognitionos.app import create_app
from cognitionos.config import Settings
from cognitionos.db import create_engine, create_sessionmaker
from cognitionos.db.models import Memory, MemoryScope, MemoryType, Role, User, UserStatus
from cognitionos.observability import configure_logging
from cognitionos.services.auth import Principal
from cognitionos.services.memory import MemoryFilter, MemoryInput, MemoryService
from cognitionos.services.memory.embeddings import WordLlamaEmbedder
from cognitionos.services.memory.search import search_memories
from tests.support import LiveServer

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
TOPICS = 100
QUERIES = 200
API_STORES = 1000
TENANTS = 1000
PER_TENANT = 20
EPISODIC = MemoryFilter(types=[MemoryType.EPISODIC])
SEARCH = """query($q: String!, $f: MemoryFilter) {
    searchMemories(query: $q, limit: 10, filter: $f) { rank memory { id } } }"""


def vocabulary() -> list[str]:
    path = Path(wordllama.__file__).parent / "tokenizers" / "l2_supercat_tokenizer_config.json"
    vocab = json.loads(path.read_text())["model"]["vocab"]
    words = [w[1:] for w in vocab if w.startswith("\u2581") and w[1:].isalpha() and w[1:].islower()]
    return [w for w in words if len(w) >= 5]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(name: str, values: list[float], base: list[float] | None = None) -> str:
    ratio = f"  ratio p50 vs exact {pct(values, 0.5) / pct(base, 0.5):.3f}" if base else ""
    return f"{name:<42} p50 {pct(values, 0.5):7.2f} ms  p95 {pct(values, 0.95):7.2f} ms{ratio}"


async def main() -> None:
    configure_logging(level="WARNING", json=True)
    rng = random.Random(7)
    words = vocabulary()
    common, content = words[:200], words[400:4000]
    topics = [rng.sample(content, 15) for _ in range(TOPICS)]

    def sentence(topic: int) -> str:
        return " ".join(rng.sample(topics[topic], 6) + rng.sample(common, 2))

    async with embedded_stack("cognitionos-bench-memory-") as stack:
        settings = Settings(
            env="test",
            database_url=stack.database_url,
            redis_url=stack.redis_url,
            secret_key="bench-secret-key-that-is-long-enough-0123456789",
            worker_in_process=False,
            graphql_rate_limit=1_000_000,
        )
        live = LiveServer(create_app(settings)).start()
        token = live.gql.member("bench@example.com")
        user_id = uuid.UUID(live.gql.ok("{ me { id } }", token=token)["me"]["id"])
        principal = Principal(user_id=user_id, role=Role.MEMBER)
        engine = create_engine(stack.database_url, pool_size=4, pre_ping=False)
        sessionmaker = create_sessionmaker(engine)
        embedder = WordLlamaEmbedder(256)
        service = MemoryService(settings, sessionmaker, embedder=embedder)
        await embedder.embed(["warm up"])
        print(
            f"{N} memories, {TOPICS} topics, 256 dimensions (WordLlama), "
            "HNSW m=16 ef_construction=64"
        )

        # 1. Through the service, one at a time (what storeMemory does).
        t0 = time.perf_counter()
        for i in range(API_STORES):
            await service.store(
                principal, MemoryInput(content=sentence(i % TOPICS), scope=MemoryScope.USER)
            )
        api_rate = API_STORES / (time.perf_counter() - t0)

        # 2. In bulk: batched embedding, multi-row inserts, then the index build.
        async with sessionmaker() as session:
            await session.execute(text("DROP INDEX ix_memories_embedding"))
            await session.commit()
        embed_seconds = insert_seconds = 0.0
        # 5 % EPISODIC, drawn independently of the topic (a filter that tracks the topic
        # would be a different test: its matches sit far from most queries in the graph).
        episodic = [rng.random() < 0.05 for _ in range(N)]
        for start in range(API_STORES, N, 2000):
            batch = [(i, sentence(i % TOPICS)) for i in range(start, min(N, start + 2000))]
            t = time.perf_counter()
            vectors = await embedder.embed([s for _, s in batch])
            embed_seconds += time.perf_counter() - t
            t = time.perf_counter()
            rows = [
                {
                    "id": uuid.uuid4(),
                    "owner_id": user_id,
                    "scope": MemoryScope.USER,
                    "type": MemoryType.EPISODIC if episodic[i] else MemoryType.LONG_TERM,
                    "content": s,
                    "embedding": v,
                    "embedder": embedder.name,
                    "importance": 0.5,
                    "confidence": 1.0,
                    "access_count": 0,
                    "extra": {"topic": i % TOPICS},
                }
                for (i, s), v in zip(batch, vectors, strict=True)
            ]
            async with sessionmaker() as session:
                await session.execute(insert(Memory), rows)
                await session.commit()
            insert_seconds += time.perf_counter() - t
        bulk = N - API_STORES
        t = time.perf_counter()
        async with sessionmaker() as session:
            await session.execute(text("SET maintenance_work_mem = '1GB'"))
            await session.execute(
                text(
                    "CREATE INDEX ix_memories_embedding ON memories USING hnsw "
                    "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
                )
            )
            await session.execute(text("ANALYZE memories"))
            await session.commit()
        build_seconds = time.perf_counter() - t
        print(f"store via the service (embed + dedup + HNSW upkeep): {api_rate:8.0f} memories/s")
        both = bulk / (embed_seconds + insert_seconds)
        print(
            f"store in bulk: embedding {bulk / embed_seconds:8.0f}/s, "
            f"insert {bulk / insert_seconds:8.0f}/s, both {both:8.0f}/s; "
            f"HNSW build {build_seconds:.1f} s"
        )

        # Queries: three words of a topic (about 4 % of its memories hold all three).
        queries = [" ".join(rng.sample(topics[rng.randrange(TOPICS)], 3)) for _ in range(QUERIES)]
        vectors = await embedder.embed(queries)

        # 3. Recall@10 of the index against an exact scan (vector ranking alone).
        async def nearest(vector: list[float], exact: bool, episodic: bool) -> list[uuid.UUID]:
            distance = Memory.embedding.cosine_distance(vector)
            stmt = select(Memory.id).order_by(distance).limit(10)
            if episodic:
                stmt = stmt.where(Memory.type == MemoryType.EPISODIC)
            async with sessionmaker() as session:
                if exact:
                    await session.execute(text("SET LOCAL enable_indexscan = off"))
                else:
                    await session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
                    ef = settings.memory_ef_search
                    await session.execute(text(f"SET LOCAL hnsw.ef_search = {ef}"))
                return list((await session.scalars(stmt)).all())

        for episodic in (False, True):
            found = 0
            for v in vectors:
                truth = set(await nearest(v, True, episodic))
                found += len(truth & set(await nearest(v, False, episodic)))
            label = "filtered (5 %)" if episodic else "unfiltered"
            print(f"HNSW recall@10 vs exact scan, {label}: {found / (10 * QUERIES):.3f}")

        # 4. Latency: exact scan, the search SQL alone, and end to end.
        async def timed(make: object) -> list[float]:
            out = []
            for q, v in zip(queries, vectors, strict=True):
                t = time.perf_counter()
                await make(q, v)  # type: ignore[operator]
                out.append((time.perf_counter() - t) * 1000)
            return out

        for label, f in (("unfiltered", None), ("filtered 5 %", EPISODIC)):
            exact = await timed(lambda q, v, f=f: nearest(v, True, f is not None))

            async def sql(q: str, v: list[float], f: MemoryFilter | None = f) -> None:
                async with sessionmaker() as session:
                    await search_memories(
                        session,
                        settings=settings,
                        principal=principal,
                        query=q,
                        vector=v,
                        limit=10,
                        filter=f,
                    )

            alone = await timed(sql)
            variables = {"f": {"types": ["EPISODIC"]}} if f is not None else {}
            end_to_end = await timed(
                lambda q, v, extra=variables: asyncio.to_thread(
                    live.gql.ok, SEARCH, {"q": q, **extra}, token=token
                )
            )
            print(line(f"exact scan top-10 ({label})", exact))
            print(line(f"search SQL alone, hybrid ({label})", alone, exact))
            print(line(f"searchMemories end to end ({label})", end_to_end, exact))
        print("goals: recall@10 >= 0.95, end-to-end p95 < 25 ms")

        # 5. Many tenants: 1,000 members with 20 memories each join the table, and each
        #    searches what they may see, 20 of ~120,000 rows (the visibility filter).
        tenants = [uuid.uuid4() for _ in range(TENANTS)]
        async with sessionmaker() as session:
            await session.execute(
                insert(User),
                [
                    {
                        "id": u,
                        "email": f"{u}@example.com",
                        "password_hash": "x",
                        "role": Role.MEMBER,
                        "status": UserStatus.ACTIVE,
                        "failed_login_count": 0,
                    }
                    for u in tenants
                ],
            )
            await session.commit()
        owned = [(u, sentence(rng.randrange(TOPICS))) for u in tenants for _ in range(PER_TENANT)]
        for start in range(0, len(owned), 2000):
            batch = owned[start : start + 2000]
            vectors_ = await embedder.embed([c for _, c in batch])
            async with sessionmaker() as session:
                await session.execute(
                    insert(Memory),
                    [
                        {
                            "id": uuid.uuid4(),
                            "owner_id": u,
                            "scope": MemoryScope.USER,
                            "type": MemoryType.LONG_TERM,
                            "content": c,
                            "embedding": v,
                            "embedder": embedder.name,
                            "importance": 0.5,
                            "confidence": 1.0,
                            "access_count": 0,
                            "extra": {},
                        }
                        for (u, c), v in zip(batch, vectors_, strict=True)
                    ],
                )
                await session.commit()
        async with sessionmaker() as session:
            await session.execute(text("ANALYZE memories"))
            await session.commit()
        tenant_ms: list[float] = []
        fewest = 10
        for i, (q, v) in enumerate(zip(queries, vectors, strict=True)):
            member = Principal(user_id=tenants[i % TENANTS], role=Role.MEMBER)
            t = time.perf_counter()
            async with sessionmaker() as session:
                hits = await search_memories(
                    session,
                    settings=settings,
                    principal=member,
                    query=q,
                    vector=v,
                    limit=10,
                    filter=None,
                )
            tenant_ms.append((time.perf_counter() - t) * 1000)
            fewest = min(fewest, len(hits))
        print(
            line(f"search SQL alone, one of {TENANTS} tenants", tenant_ms)
            + f"  fewest hits {fewest}/10"
        )
        await service.stop()
        await engine.dispose()
        live.stop()


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    asyncio.run(main())
