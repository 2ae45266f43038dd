"""Search at scale: ``search`` and ``suggest`` against an ILIKE scan, in one run.

Builds N documents (default 100,000) across the five types: 15 % workflows, 40 %
executions, 1 % agents, 24 % memories, 20 % notifications, owned by 50 members (the asker
is one of them), in words drawn from a Zipf-like vocabulary (300 domain words, then a long
tail), so common words match thousands of rows and rare ones a few. Every row goes in
through the triggers (the index is kept as it is written); then the whole index is rebuilt
the way the migration builds it for existing rows. Reports:

* ingest rate with the triggers, and the index build time for N rows (vectors + GIN, and
  the suggestion table), as the migrations build them;
* 200 queries of one to four words taken from real documents, a fifth of them with a typo,
  as a member and as an admin (who sees every row): the search SQL alone (match, rank,
  facets, page, snippets, typo correction) against an ``ILIKE '%word%'`` scan with the same
  rights returning the same page size (newest first, no ranking, no facets) and its count;
* the same queries end to end over HTTP (``search`` with facets and highlights) against a
  server in a process of its own (as ``cognitionos serve`` runs), one request at a time:
  from ``wrk`` (one connection, each query in turn for 10 s; the goal's figure: native
  code, it takes next to nothing from the two cores), and from a Python client in a loop
  (the figure of earlier rounds; it includes the client's own time: building the
  request, reading and checking the answer);
* 200 prefixes (one to three words, the last one cut) through ``suggest``, against an
  ``ILIKE 'prefix%'`` scan of the same completions (names, keys, tags, capabilities, the
  member's executions' workflow keys and notification subjects).

Usage: python bench/search.py [N]   (the wrk rows need Debian's ``wrk``; without it they
say so and the rest runs)
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import random
import shutil
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support's GraphQL client

import asyncpg
from _stack import embedded_stack
from http_requests import start as start_server
from http_requests import stop as stop_server
from http_requests import wrk_cycle

from cognitionos.config import Settings
from cognitionos.db import create_engine, create_reader
from cognitionos.db.models import Role
from cognitionos.observability import configure_logging
from cognitionos.services.auth import Principal
from cognitionos.services.search import search, suggest
from tests.support import GQL

# The migrations' own statements, so the bench builds what an upgrade builds.
SUGGESTIONS = importlib.import_module("cognitionos.db.migrations.versions.0010_search_suggestions")
SUPERSEDED = importlib.import_module("cognitionos.db.migrations.versions.0011_search_superseded")
SHARDS = importlib.import_module("cognitionos.db.migrations.versions.0012_search_workflow_shards")
MEMORY_VECTOR = importlib.import_module(
    "cognitionos.db.migrations.versions.0013_search_memory_vector"
)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
MEMBERS = 50
QUERIES = 200
WRK_SECONDS = 10
SEARCH = """query($q: String!) { search(query: $q, first: 20) {
    total didYouMean hits { type id title snippet score highlights { field text } }
    facets { field values { value count } } pageInfo { hasNextPage endCursor } } }"""
SUGGEST = "query($p: String!) { suggest(prefix: $p) { text type id } }"

DOMAIN = """invoice report daily weekly monthly summary summarize customer churn forecast
pipeline sync import export ledger payment refund order shipment inventory warehouse
analytics dashboard metrics alert incident outage deploy release build test review
approval onboarding offboarding account user billing subscription renewal contract legal
compliance audit security scan vulnerability patch backup restore archive cleanup
migration database query index cache queue worker schedule nightly hourly digest email
slack webhook notification reminder escalation ticket support triage classify extract
translate transcribe sentiment feedback survey lead campaign newsletter marketing sales
quote proposal budget expense reconcile reconciliation payroll tax vendor supplier
procurement purchase request document contract policy knowledge research competitor
pricing product roadmap feature bug regression latency error timeout retry failure
success upstream downstream api gateway service cluster node region storage bucket
upload download ingest transform enrich validate dedupe normalize score rank recommend
model training evaluation dataset label annotation prompt agent planner critic executor
summarizer memory context conversation chat session meeting notes calendar agenda
minutes transcript call recording interview hiring candidate resume offer employee
performance goal objective quarterly annual plan strategy risk issue task project
milestone sprint standup retrospective changelog version rollout rollback canary flag
experiment cohort funnel conversion retention revenue margin cost spend usage quota limit
""".split()
CAPABILITIES = """writing research analysis planning review summarization translation coding
extraction classification forecasting triage support billing search""".split()
ERRORS = [
    "timeout calling upstream {w} api after 30s",
    "connection refused by {w} service",
    "rate limited by {w} gateway: 429",
    "validation failed: {w} field is required",
    "{w} returned 500 internal server error",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(name: str, values: list[float], base: list[float] | None = None) -> str:
    ratio = ""
    if base:
        ratio = (
            f"  vs ILIKE: p50 x{pct(values, 0.5) / pct(base, 0.5):.3f}"
            f" p95 x{pct(values, 0.95) / pct(base, 0.95):.3f}"
        )
    return f"{name:<46} p50 {pct(values, 0.5):7.2f} ms  p95 {pct(values, 0.95):7.2f} ms{ratio}"


class Words:
    """Zipf-like: word i of the domain list has weight 1/(i+1); a fifth of draws come from
    a long tail of generated words, each rare."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.domain = DOMAIN
        self.weights = [1 / (i + 1) ** 0.8 for i in range(len(DOMAIN))]
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.tail = [
            "".join(rng.choice(letters) for _ in range(rng.randint(5, 9))) for _ in range(20_000)
        ]

    def word(self) -> str:
        if self.rng.random() < 0.2:
            return self.rng.choice(self.tail)
        return self.rng.choices(self.domain, self.weights)[0]

    def words(self, lo: int, hi: int) -> list[str]:
        return [self.word() for _ in range(self.rng.randint(lo, hi))]

    def sentence(self, lo: int = 6, hi: int = 20) -> str:
        return " ".join(self.words(lo, hi)).capitalize() + "."


def typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(1, len(word) - 1)
    if rng.random() < 0.5:
        return word[:i] + word[i + 1 :]  # a letter dropped
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # two letters swapped


async def bulk(conn: asyncpg.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """``INSERT … SELECT FROM unnest($1, $2, …)`` in batches: one statement per batch."""
    for start in range(0, len(rows), 5000):
        batch = rows[start : start + 5000]
        await conn.execute(sql, *[list(col) for col in zip(*batch, strict=True)])


async def populate(
    conn: asyncpg.Connection, rng: random.Random, words: Words, members: list[uuid.UUID]
) -> dict[str, list[tuple[Any, ...]]]:
    n_workflows, n_executions = int(N * 0.15), int(N * 0.40)
    n_agents, n_memories = int(N * 0.01), int(N * 0.24)
    n_notifications = N - n_workflows - n_executions - n_agents - n_memories
    now = time.time()

    def when() -> float:
        return now - rng.random() * 365 * 86400

    workflows = []
    for i in range(n_workflows):
        title = words.words(2, 4)
        steps = [
            {"key": f"s{j}", "name": " ".join(words.words(1, 3)), "kind": "LLM"}
            for j in range(rng.randint(1, 4))
        ]
        workflows.append(
            (
                uuid.uuid4(),
                f"{'-'.join(title)}-{i}",
                " ".join(title).capitalize(),
                words.sentence(),
                rng.sample(DOMAIN[:60], rng.randint(0, 3)),
                steps,
                rng.choice(members),
                when(),
            )
        )
    await bulk(
        conn,
        """INSERT INTO workflows (id, key, version, major, minor, patch, is_release, name,
            description, tags, steps, metadata, created_by, created_at)
        SELECT id, key, '1.0.0', 1, 0, 0, true, name, d, string_to_array(t, ','),
            s::jsonb, '{}', c, to_timestamp(at)
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::uuid[], $8::float8[]) AS r(id, key, name, d, t, s, c, at)""",
        [(w[0], w[1], w[2], w[3], ",".join(w[4]), _json(w[5]), w[6], w[7]) for w in workflows],
    )
    statuses = ["SUCCEEDED"] * 6 + ["FAILED", "FAILED", "RUNNING", "CANCELLED"]
    executions = []
    for _ in range(n_executions):
        status = rng.choice(statuses)
        error = rng.choice(ERRORS).format(w=words.word()) if status == "FAILED" else None
        executions.append(
            (uuid.uuid4(), rng.choice(workflows)[0], status, error, rng.choice(members), when())
        )
    await bulk(
        conn,
        """INSERT INTO workflow_executions (id, workflow_id, status, inputs, error, created_by,
            tokens, event_version, active_steps, created_at)
        SELECT id, w, s, '{}', e, c, 0, 0, 0, to_timestamp(at)
        FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::float8[])
            AS r(id, w, s, e, c, at)""",
        executions,
    )
    roles = ["PLANNER", "EXECUTOR", "CRITIC", "SUMMARIZER"]
    await bulk(
        conn,
        """INSERT INTO agents (id, name, role, description, capabilities, model, temperature,
            max_concurrency, current_load, status, failures, created_at)
        SELECT id, n, r, d, string_to_array(c, ','), 'gpt-4o-mini', 0.2, 4, 0, 'IDLE', 0,
            to_timestamp(at)
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[])
            AS x(id, n, r, d, c, at)""",
        [
            (
                uuid.uuid4(),
                f"{words.word()}-{i}",
                rng.choice(roles),
                words.sentence(),
                ",".join(rng.sample(CAPABILITIES, rng.randint(1, 3))),
                when(),
            )
            for i in range(n_agents)
        ],
    )
    await bulk(
        conn,
        """INSERT INTO memories (id, owner_id, scope, type, content, embedding, embedder,
            importance, confidence, access_count, metadata, created_at)
        SELECT id, CASE WHEN g THEN NULL ELSE o END, CASE WHEN g THEN 'GLOBAL' ELSE 'USER' END,
            'LONG_TERM', c, array_fill(0.1, ARRAY[256])::vector, 'bench', 0.5, 1, 0,
            jsonb_build_object('topic', t), to_timestamp(at)
        FROM unnest($1::uuid[], $2::uuid[], $3::bool[], $4::text[], $5::text[], $6::float8[])
            AS r(id, o, g, c, t, at)""",
        [
            (
                uuid.uuid4(),
                rng.choice(members),
                rng.random() < 0.1,
                words.sentence(8, 40),
                words.word(),
                when(),
            )
            for _ in range(n_memories)
        ],
    )
    await bulk(
        conn,
        """INSERT INTO notifications (id, user_id, channel, subject, body, data, priority,
            status, attempts, created_at)
        SELECT id, u, 'IN_APP', s, b, '{}', 'NORMAL', 'DELIVERED', 0, to_timestamp(at)
        FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::float8[])
            AS r(id, u, s, b, at)""",
        [
            (
                uuid.uuid4(),
                rng.choice(members),
                " ".join(words.words(2, 5)).capitalize(),
                words.sentence(),
                when(),
            )
            for _ in range(n_notifications)
        ],
    )
    return {"workflows": workflows, "executions": executions}


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


# The baseline: every word as ILIKE '%word%' over the same text, the same rights, the same
# page (newest first) and a count; no ranking, facets, snippets or typo tolerance.
BASELINE = """
WITH m AS MATERIALIZED (
    SELECT 'WORKFLOW' AS type, id, created_at FROM workflows w
    WHERE {w}
    UNION ALL
    SELECT 'EXECUTION', e.id, e.created_at FROM workflow_executions e
    JOIN workflows w ON w.id = e.workflow_id
    WHERE ($1 OR e.created_by = $2) AND {e}
    UNION ALL
    SELECT 'AGENT', id, created_at FROM agents a WHERE {a}
    UNION ALL
    SELECT 'MEMORY', id, created_at FROM memories m
    WHERE ($1 OR m.scope = 'GLOBAL' OR m.owner_id = $2) AND {m}
    UNION ALL
    SELECT 'NOTIFICATION', id, created_at FROM notifications n
    WHERE ($1 OR n.user_id = $2) AND {n}
)
SELECT (SELECT count(*) FROM m), id FROM (SELECT id FROM m ORDER BY created_at DESC LIMIT 21) p
"""
FIELDS = {
    "w": "concat_ws(' ', w.key, w.name, w.description, array_to_string(w.tags, ' '), "
    "w.steps::text)",
    "e": "concat_ws(' ', w.key, w.name, e.status, e.error)",
    "a": "concat_ws(' ', a.name, a.role, a.description, array_to_string(a.capabilities, ' '))",
    "m": "concat_ws(' ', m.content, m.metadata::text)",
    "n": "concat_ws(' ', n.subject, n.body)",
}
# The same completions as suggest, found by scanning: names, keys, tags, capabilities, the
# asker's executions' workflow keys and notification subjects that start with what was
# typed, or have a word that does.
SUGGEST_BASELINE = """
SELECT label FROM (
    SELECT w.name AS label FROM workflows w
    UNION ALL SELECT w.key FROM workflows w
    UNION ALL SELECT unnest(w.tags) FROM workflows w
    UNION ALL SELECT a.name FROM agents a
    UNION ALL SELECT unnest(a.capabilities) FROM agents a
    UNION ALL SELECT w.key FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id
        WHERE e.created_by = $3
    UNION ALL SELECT n.subject FROM notifications n WHERE n.user_id = $3
) s WHERE label ILIKE $1 OR label ILIKE $2
ORDER BY length(label) LIMIT 8
"""


def baseline_sql(words: list[str]) -> str:
    parts = {}
    for alias, expr in FIELDS.items():
        parts[alias] = " AND ".join(f"{expr} ILIKE ${i + 3}" for i in range(len(words)))
    return BASELINE.format(**parts)


def over_wrk(url: str, query: str, variables: list[dict[str, str]], token: str, name: str) -> str:
    """The same requests from ``wrk`` (one connection, one request at a time, each body
    in turn for WRK_SECONDS after a warm-up): native code, so the figure is the server's
    and not a Python client's on the same two cores."""
    if shutil.which("wrk") is None:
        return f"{name} over HTTP, wrk: not installed (Debian: apt-get install wrk)"
    bodies = [json.dumps({"query": query, "variables": v}) for v in variables]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    wrk_cycle(url, bodies, headers, 2)
    n, bad, p50, p95, p99 = wrk_cycle(url, bodies, headers, WRK_SECONDS)
    if bad:
        raise RuntimeError(f"{name}: {bad} of {n} responses were not answers")
    label = f"{name} over HTTP, wrk -c1"
    return f"{label:<46} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  p99 {p99:.2f} ms  ({n} requests)"


async def timed(calls: list[Callable[[], Awaitable[Any]]]) -> list[float]:
    out = []
    for call in calls:
        t = time.perf_counter()
        await call()
        out.append((time.perf_counter() - t) * 1000)
    return out


async def main() -> None:
    configure_logging(level="WARNING", json=True)
    rng = random.Random(11)
    words = Words(rng)
    async with embedded_stack("cognitionos-bench-search-") as stack:
        settings = Settings(
            env="test",
            database_url=stack.database_url,
            redis_url=stack.redis_url,
            secret_key="bench-secret-key-that-is-long-enough-0123456789",
            worker_in_process=False,
            graphql_rate_limit=1_000_000,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
        env.update(
            DATABASE_URL=stack.database_url,
            REDIS_URL=stack.redis_url,
            SECRET_KEY=settings.secret_key or "",
            COGNITIONOS_ENV="test",
            COGNITIONOS_DATA_DIR=str(stack.data),
            COGNITIONOS_WORKER_IN_PROCESS="false",
            COGNITIONOS_GRAPHQL_RATE_LIMIT="1000000",
            COGNITIONOS_LOG_LEVEL="WARNING",
        )
        server, url = await asyncio.to_thread(
            start_server, "cognitionos", env, stack.data / "s.log"
        )
        gql = GQL(url.removesuffix("/graphql"))
        token = gql.member("bench@example.com")
        me = uuid.UUID(gql.ok("{ me { id } }", token=token)["me"]["id"])
        gql.register("root@example.com")
        dsn = stack.database_url.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn)
        await conn.execute("UPDATE users SET role = 'ADMIN' WHERE email = 'root@example.com'")
        admin_token = gql.login("root@example.com").json()["data"]["login"]["accessToken"]
        others = [uuid.uuid4() for _ in range(MEMBERS - 1)]
        await conn.executemany(
            "INSERT INTO users (id, email, password_hash, role, status, failed_login_count) "
            "VALUES ($1, $2, 'x', 'MEMBER', 'ACTIVE', 0)",
            [(u, f"{u}@example.com") for u in others],
        )
        await conn.execute("DROP INDEX ix_memories_embedding")  # vectors are not benchmarked

        t = time.perf_counter()
        docs = await populate(conn, rng, words, [me, *others])
        ingest = time.perf_counter() - t
        await conn.execute("VACUUM ANALYZE")
        terms = await conn.fetchval("SELECT count(*) FROM search_terms")
        print(
            f"{N} documents (15 % workflows, 40 % executions, 1 % agents, 24 % memories, "
            f"20 % notifications), {MEMBERS} members; vocabulary {terms} words"
        )
        print(f"ingest through the triggers: {N / ingest:8.0f} documents/s ({ingest:.1f} s)")

        # The index build for existing rows, as the migration does it.
        t = time.perf_counter()
        for table in ("workflow_executions", "agents", "notifications"):
            await conn.execute(f"DROP INDEX ix_{table}_search")
            await conn.execute(f"UPDATE {table} SET search_tsv = NULL")  # noqa: S608
            await conn.execute(
                f"CREATE INDEX ix_{table}_search ON {table} USING gin (search_tsv) "
                "WITH (fastupdate = off)"
            )
        # Workflows' index is in two shards (migration 0012).
        await conn.execute("DROP INDEX ix_workflows_search_first, ix_workflows_search_rest")
        await conn.execute("UPDATE workflows SET search_tsv = NULL")
        for index in SHARDS.INDEXES:
            await conn.execute(index)
        # Memories' vector is generated and stored: the table is rewritten (migration 0013).
        await conn.execute("ALTER TABLE memories DROP COLUMN search_tsv")
        await conn.execute(MEMORY_VECTOR.COLUMN)
        await conn.execute(MEMORY_VECTOR.INDEX)
        build = time.perf_counter() - t
        print(
            "index build for existing rows (vectors + GIN, migrations 0008, 0012, 0013): "
            f"{build:.1f} s"
        )
        t = time.perf_counter()
        await conn.execute("DROP INDEX ix_search_suggestions_type")
        await conn.execute("TRUNCATE search_suggestions, search_superseded_workflows")
        await conn.execute(SUGGESTIONS.BACKFILL)
        await conn.execute(SUGGESTIONS.ADMIN_INDEX)
        await conn.execute(SUPERSEDED.BACKFILL)
        build = time.perf_counter() - t
        rows = await conn.fetchval("SELECT count(*) FROM search_suggestions")
        print(f"suggestion table build for existing rows (as migrations 0010-0011): {build:.1f} s")
        print(f"   {rows} suggestion rows")
        await conn.execute("VACUUM ANALYZE")
        jit = await conn.fetchrow("SELECT pg_jit_available() AS a, current_setting('jit') AS j")
        version = await conn.fetchval("SHOW server_version")
        print(f"PostgreSQL {version}, jit = {jit['j']}, JIT available: {jit['a']}")

        # Queries: 1-4 consecutive words of a random document's title or text; 1 in 5 with
        # a typo in its longest word.
        sources = [w[2] + " " + w[3] for w in docs["workflows"][:2000]] + [
            e[3] for e in docs["executions"][:4000] if e[3]
        ]
        queries = []
        for _ in range(QUERIES):
            text_words = [w.strip(".:").lower() for w in rng.choice(sources).split()]
            text_words = [w for w in text_words if w.isalpha()] or ["report"]
            size = min(len(text_words), rng.choice([1, 1, 2, 2, 2, 3, 3, 4]))
            start = rng.randrange(len(text_words) - size + 1)
            picked = text_words[start : start + size]
            if rng.random() < 0.2:
                longest = max(range(len(picked)), key=lambda i: len(picked[i]))
                if len(picked[longest]) >= 5:
                    picked[longest] = typo(rng, picked[longest])
            queries.append(" ".join(picked))
        prefixes = []
        for _ in range(QUERIES):
            name = rng.choice(docs["workflows"])[2].lower().split()
            size = rng.randint(1, min(3, len(name)))
            picked = name[:size]
            picked[-1] = picked[-1][: rng.randint(2, max(2, len(picked[-1])))]
            prefixes.append(" ".join(picked))

        engine = create_engine(stack.database_url, pool_size=2, pre_ping=False)
        reader = create_reader(engine)
        member = Principal(user_id=me, role=Role.MEMBER)
        root = Principal(user_id=uuid.uuid4(), role=Role.ADMIN)
        totals: list[int] = []
        corrected = 0

        async def run_search(q: str, who: Principal) -> None:
            nonlocal corrected
            r = await search(reader, principal=who, query=q)
            totals.append(r.total)
            corrected += r.did_you_mean is not None

        async def run_baseline(q: str, admin: bool) -> None:
            ws = [w for w in q.split() if w]
            await conn.fetch(baseline_sql(ws), admin, me, *[f"%{w}%" for w in ws])

        for _ in range(2):  # warm the caches and the prepared statements
            await timed([lambda q=q: run_search(q, member) for q in queries[:50]])
        for label, who, admin in (("member", member, False), ("admin", root, True)):
            totals.clear()
            corrected = 0
            base = await timed([lambda q=q, a=admin: run_baseline(q, a) for q in queries])
            ours = await timed([lambda q=q, w=who: run_search(q, w) for q in queries])
            print(line(f"ILIKE scan, same rights ({label})", base))
            print(line(f"search SQL alone ({label})", ours, base))
            print(
                f"   matches per query: median {pct(totals, 0.5)}, p95 {pct(totals, 0.95)}, "
                f"max {max(totals)}; didYouMean offered {corrected}/{QUERIES}"
            )

        def over_http(query: str, variables: dict[str, Any], tok: str) -> Callable[[], Any]:
            return lambda: asyncio.to_thread(gql.ok, query, variables, token=tok)

        await timed([over_http(SEARCH, {"q": q}, token) for q in queries[:50]])
        for label, tok in (("member", token), ("admin", admin_token)):
            http = await timed([over_http(SEARCH, {"q": q}, tok) for q in queries])
            print(line(f"search over HTTP, Python client ({label})", http))
            print(over_wrk(url, SEARCH, [{"q": q} for q in queries], tok, f"search ({label})"))

        suggest_base = await timed(
            [lambda p=p: conn.fetch(SUGGEST_BASELINE, f"{p}%", f"% {p}%", me) for p in prefixes]
        )
        alone = await timed(
            [lambda p=p: suggest(reader, principal=member, prefix=p) for p in prefixes]
        )
        await timed([over_http(SUGGEST, {"p": p}, token) for p in prefixes[:50]])
        http = await timed([over_http(SUGGEST, {"p": p}, token) for p in prefixes])
        print(line("ILIKE 'prefix%' over the same completions", suggest_base))
        print(line("suggest SQL alone", alone, suggest_base))
        print(line("suggest over HTTP, Python client", http))
        print(over_wrk(url, SUGGEST, [{"p": p} for p in prefixes], token, "suggest"))
        print("goals: search p95 < 15 ms, suggest p95 < 5 ms over HTTP (wrk)")
        await conn.close()
        await engine.dispose()
        gql.client.close()
        stop_server(server)


if __name__ == "__main__":
    asyncio.run(main())
