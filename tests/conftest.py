"""Embedded PostgreSQL and Redis, started once per test session; a clean slate per test."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis

from cognitionos.app import create_app
from cognitionos.config import Settings
from cognitionos.db import create_engine, create_sessionmaker, migrate
from cognitionos.embedded import SQL_READER, EmbeddedPostgres, EmbeddedRedis
from cognitionos.observability import configure_logging
from cognitionos.services.agents import seed as seed_agents
from cognitionos.services.auth.changes import ALL_USERS_STAMP, new_stamp
from tests.llm_fake import FakeLLM
from tests.support import GQL, LiveServer

TEST_DATABASE = "cognitionos_test"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


@dataclass
class Stack:
    postgres: EmbeddedPostgres
    redis: EmbeddedRedis
    data_dir: Path

    @property
    def database_url(self) -> str:
        return self.postgres.url(TEST_DATABASE)

    @property
    def dsn(self) -> str:
        """The same database as a plain asyncpg DSN, for assertions on stored rows."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://")

    @property
    def sql_step_url(self) -> str:
        """The test database as SQL steps' own role sees it."""
        return self.postgres.url(TEST_DATABASE, user=SQL_READER)

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "database_url": self.database_url,
            "sql_step_database_url": self.sql_step_url,
            "redis_url": self.redis.url,
            "secret_key": TEST_SECRET,
            "data_dir": self.data_dir,
            "worker_in_process": False,
        }
        values.update(overrides)
        return Settings(**values)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    configure_logging(level="INFO", json=True)
    # Not under pytest's temp root: pytest resets that to mode 0700 on every session,
    # and the embedded PostgreSQL runs as its own user, who must traverse the path.
    data_dir = Path(tempfile.mkdtemp(prefix="cognitionos-test-"))
    postgres = EmbeddedPostgres(data_dir, delete_on_stop=True)
    postgres.start()
    postgres.ensure_database(TEST_DATABASE)
    postgres.ensure_sql_reader(TEST_DATABASE, statement_timeout_ms=5000)
    cache = EmbeddedRedis(data_dir)
    cache.start()
    built = Stack(postgres=postgres, redis=cache, data_dir=data_dir)
    migrate(built.database_url)
    yield built
    cache.stop()
    postgres.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


async def _seed(stack: Stack) -> None:
    """What a first start stores: the v1 prompts and the default agents."""
    engine = create_engine(stack.database_url, pool_size=1, pre_ping=False)
    try:
        await seed_agents(create_sessionmaker(engine), stack.settings())
    finally:
        await engine.dispose()


async def _truncate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(f'"{t["tablename"]}"' for t in tables)
            for attempt in range(10):
                try:
                    await conn.execute(f"TRUNCATE {names} CASCADE")
                    break
                except asyncpg.DeadlockDetectedError:
                    # A worker of the previous test was mid-transaction; go again.
                    await asyncio.sleep(0.05 * (attempt + 1))
    finally:
        await conn.close()


@pytest.fixture(autouse=True)
def clean_slate(request: pytest.FixtureRequest) -> None:
    """Every test starts with empty tables and an empty Redis."""
    if "stack" not in request.fixturenames:
        return
    stack: Stack = request.getfixturevalue("stack")
    asyncio.run(_truncate(stack.dsn))
    asyncio.run(_seed(stack))
    redis.Redis.from_url(stack.redis.url).flushall()
    if "llm_fake" in request.fixturenames:
        request.getfixturevalue("llm_fake").reset()


@pytest.fixture(scope="session")
def llm_fake() -> Iterator[FakeLLM]:
    """OpenAI, Anthropic and OpenAI-compatible endpoints on a loopback port."""
    fake = FakeLLM()
    live = LiveServer(fake.app).start()  # type: ignore[arg-type]
    fake.url = live.url
    yield fake
    live.stop()


@pytest.fixture(scope="session")
def server(stack: Stack) -> Iterator[LiveServer]:
    live = LiveServer(create_app(stack.settings())).start()
    yield live
    live.stop()


@pytest.fixture
def gql(server: LiveServer) -> GQL:
    return server.gql


ENGINE_SETTINGS: dict[str, Any] = {
    "worker_in_process": True,
    "step_lease_seconds": 3.0,
    "dispatch_grace_seconds": 1.0,
    "reconcile_interval_seconds": 0.2,
    "schedule_tick_seconds": 0.2,
    "http_allow_hosts": ["127.0.0.1"],
    "python_steps_enabled": True,
    # One SQL connection, so consecutive SQL steps share it: what one leaves behind in its
    # session would show in the next.
    "sql_step_pool_size": 1,
}
# The fake LLM server's providers, with Anthropic as OpenAI's fallback.
LLM_SETTINGS: dict[str, Any] = {
    "llm_fallbacks": ["anthropic:claude-haiku-4-5"],
    "llm_max_retries": 1,
    "llm_retry_base_seconds": 0.01,
    "agent_wait_seconds": 0.3,
    "agent_probe_seconds": 1.0,
    "agent_failure_threshold": 2,
}


@pytest.fixture(scope="session")
def engine_server(stack: Stack, llm_fake: FakeLLM) -> Iterator[LiveServer]:
    """A server with the worker in-process: executions run to the end. Its LLM steps go
    to the fake providers (every in-process worker shares one queue, so all of them must
    be able to run any step)."""
    settings = stack.settings(**ENGINE_SETTINGS, **LLM_SETTINGS, **llm_fake.settings())
    live = LiveServer(create_app(settings)).start()
    yield live
    live.stop()


@pytest.fixture
def make_server(stack: Stack) -> Iterator[Callable[..., LiveServer]]:
    """A server with its own settings, stopped at the end of the test."""
    started: list[LiveServer] = []

    def make(**overrides: Any) -> LiveServer:
        live = LiveServer(create_app(stack.settings(**overrides))).start()
        started.append(live)
        return live

    yield make
    for live in started:
        live.stop()


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test starts; stopped (SIGTERM, then SIGKILL) at its end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def db(stack: Stack) -> Callable[..., Any]:
    """Run one SQL query against the test database and return its rows. A row changed
    here, outside the API, is announced as the API's changes are (every server's next
    request reads users and API keys again), so a test can use it at once."""

    def fetch(query: str, *args: Any) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(stack.dsn)
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        rows = asyncio.run(run())
        with redis.Redis.from_url(stack.redis.url) as client:
            client.set(ALL_USERS_STAMP, new_stamp())
        return rows

    return fetch
