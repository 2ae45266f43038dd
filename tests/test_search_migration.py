"""The search migrations index the rows that were there before them, and undo cleanly."""

from __future__ import annotations

import asyncio
import re
import uuid

import asyncpg

from cognitionos.db import create_engine, create_reader, migrate
from cognitionos.db.models import Role
from cognitionos.services.auth import Principal
from cognitionos.services.search import SearchType, search, suggest
from tests.conftest import Stack

DATABASE = "cognitionos_search_backfill"
WRITTEN_AFTER = "cognitionos_search_triggers"
OWNER = uuid.uuid4()

ROWS = [
    """INSERT INTO users (id, email, password_hash, role, status, failed_login_count)
       VALUES ($1, 'old@example.com', 'x', 'MEMBER', 'ACTIVE', 0)""",
    """INSERT INTO workflows (id, key, version, major, minor, patch, is_release, name,
           description, tags, steps, metadata, created_by)
       VALUES ($2, 'legacy-import', '1.0.0', 1, 0, 0, true, 'Legacy import', 'Moves archives',
           '{archive}', '[{"key": "copy", "name": "Copy tapes", "kind": "HTTP"}]', '{}', $1)""",
    """INSERT INTO workflow_executions (id, workflow_id, status, inputs, created_by, tokens,
           event_version, active_steps, error)
       VALUES ($3, $2, 'FAILED', '{}', $1, 0, 0, 0, 'tape drive jammed')""",
    """INSERT INTO notifications (id, user_id, channel, subject, body, data, priority, status,
           attempts)
       VALUES ($4, $1, 'IN_APP', 'Archive ready', 'Your tapes were copied', '{}', 'NORMAL',
           'DELIVERED', 0)""",
    """INSERT INTO memories (id, owner_id, scope, type, content, embedding, embedder,
           importance, confidence, access_count, metadata)
       VALUES ($5, $1, 'USER', 'LONG_TERM', 'Tapes live in the basement vault',
           array_fill(0.1, ARRAY[256])::vector, 'test', 0.5, 1, 0, '{"room": "cellar"}')""",
]


async def _insert(dsn: str, ids: list[uuid.UUID]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for sql in ROWS:
            # $n is ids[n - 1]: pass the ones the statement names, as $1, $2, …
            used = sorted({int(n) for n in re.findall(r"\$(\d+)", sql)})
            dense = {f"${n}": f"${i}" for i, n in enumerate(used, 1)}
            await conn.execute(
                re.sub(r"\$\d+", lambda m, d=dense: d[m[0]], sql), *(ids[n - 1] for n in used)
            )
    finally:
        await conn.close()


async def _search(url: str, query: str) -> dict[SearchType, int]:
    engine = create_engine(url, pool_size=1, pre_ping=False)
    try:
        me = Principal(user_id=OWNER, role=Role.MEMBER)
        result = await search(create_reader(engine), principal=me, query=query)
        return {h.type: 1 for h in result.hits}
    finally:
        await engine.dispose()


async def _suggest(url: str, prefix: str) -> set[tuple[str, str, str]]:
    engine = create_engine(url, pool_size=1, pre_ping=False)
    try:
        me = Principal(user_id=OWNER, role=Role.MEMBER)
        found = await suggest(create_reader(engine), principal=me, prefix=prefix)
        return {(s.type.value, s.field, s.text) for s in found}
    finally:
        await engine.dispose()


async def _suggestions(dsn: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT audience, type, tail, term, field, label, id, refs FROM search_suggestions "
            "WHERE label NOT IN ('planner', 'executor', 'critic', 'summarizer') "
            "ORDER BY audience, type, tail, term, field, label"
        )
        return [tuple(r) for r in rows]
    finally:
        await conn.close()


def test_rows_written_before_the_migration_are_found_after_it(stack: Stack) -> None:
    stack.postgres.ensure_database(DATABASE)
    url = stack.postgres.url(DATABASE)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    migrate(url, "0007")
    ids = [OWNER, *(uuid.uuid4() for _ in range(4))]
    asyncio.run(_insert(dsn, ids))

    migrate(url)

    assert asyncio.run(_search(url, "tapes")) == {  # "tape drive jammed" too: stemmed
        SearchType.WORKFLOW: 1,
        SearchType.EXECUTION: 1,
        SearchType.NOTIFICATION: 1,
        SearchType.MEMORY: 1,
    }
    assert asyncio.run(_search(url, "jammed")) == {SearchType.EXECUTION: 1}
    assert asyncio.run(_search(url, "cellar")) == {SearchType.MEMORY: 1}
    assert asyncio.run(_search(url, "basment vault")) == {SearchType.MEMORY: 1}  # a typo
    # The key says what the name says: offered once for the workflow; the run's key too.
    legacy = {("WORKFLOW", "name", "Legacy import"), ("EXECUTION", "key", "legacy-import")}
    assert asyncio.run(_suggest(url, "legacy")) == legacy
    assert asyncio.run(_suggest(url, "archi")) == {
        ("WORKFLOW", "tag", "archive"),
        ("NOTIFICATION", "subject", "Archive ready"),
    }
    # What the backfill wrote is what the triggers write for the same rows.
    stack.postgres.ensure_database(WRITTEN_AFTER)
    after_url = stack.postgres.url(WRITTEN_AFTER)
    migrate(after_url)
    asyncio.run(_insert(after_url.replace("postgresql+asyncpg://", "postgresql://"), ids))
    backfilled = asyncio.run(_suggestions(dsn))
    assert len(backfilled) == 9  # 2 + 2 workflow terms, 1 tag, 2 execution, 2 subject
    assert backfilled == asyncio.run(_suggestions(after_url.replace("+asyncpg", "")))

    # Down and up again: the vectors are rebuilt the same way.
    migrate_down(url)
    migrate(url)
    assert asyncio.run(_search(url, "archive")) == {
        SearchType.WORKFLOW: 1,
        SearchType.NOTIFICATION: 1,
    }
    assert asyncio.run(_suggest(url, "legacy")) == legacy
    assert asyncio.run(_suggestions(dsn)) == backfilled


def migrate_down(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from cognitionos.db.engine import MIGRATIONS, normalize_url

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = normalize_url(url)
    command.downgrade(config, "0007")
