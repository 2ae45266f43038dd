"""The search migration indexes the rows that were there before it, and undoes cleanly."""

from __future__ import annotations

import asyncio
import re
import uuid

import asyncpg

from cognitionos.db import create_engine, create_reader, migrate
from cognitionos.db.models import Role
from cognitionos.services.auth import Principal
from cognitionos.services.search import SearchType, search
from tests.conftest import Stack

DATABASE = "cognitionos_search_backfill"
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

    # Down and up again: the vectors are rebuilt the same way.
    migrate_down(url)
    migrate(url)
    assert asyncio.run(_search(url, "archive")) == {
        SearchType.WORKFLOW: 1,
        SearchType.NOTIFICATION: 1,
    }


def migrate_down(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from cognitionos.db.engine import MIGRATIONS, normalize_url

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = normalize_url(url)
    command.downgrade(config, "0007")
