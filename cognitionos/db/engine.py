"""Engine and session factory. Created in the app lifespan or the worker's startup."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from cognitionos._json import loads

__all__ = ["create_engine", "create_reader", "create_sessionmaker", "migrate", "normalize_url"]

MIGRATIONS = Path(__file__).parent / "migrations"
# A pooled connection unused for this long is pinged before it is handed out.
IDLE_PING_SECONDS = 10.0
RECYCLE_SECONDS = 1800


def normalize_url(url: str) -> str:
    """Accept the conventional ``postgres://`` / ``postgresql://`` forms."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def create_engine(url: str, *, pool_size: int = 10, pre_ping: bool = True) -> AsyncEngine:
    """The engine of a process, with ``pool_size`` connections (and as many overflow).

    No ping on every checkout (a round trip on every request): with ``pre_ping`` a
    connection is pinged only when it sat unused in the pool for ``IDLE_PING_SECONDS``
    (where a restarted server or a dropped idle connection is found: the dead one is
    replaced before anyone sees it). Every connection is replaced after
    ``RECYCLE_SECONDS``. A connection that dies while busy fails its statement; SQLAlchemy
    then invalidates every pooled connection older than the failure, so the next checkouts
    connect afresh. The worker is safe either way: a transaction that meets a dead
    connection leaves its step as it was and the reconciler dispatches it again."""
    engine = create_async_engine(
        normalize_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=RECYCLE_SECONDS,
        # JSONB columns are read with orjson (cognitionos/_json.py) and written with the
        # standard library as before: a NaN is then refused by PostgreSQL, where orjson
        # would quietly write null.
        json_deserializer=loads,
    )
    if pre_ping:
        _ping_when_idle(engine, IDLE_PING_SECONDS)
    return engine


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    def checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return  # new, or in steady use
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool discards this connection and checks out another (up to 3 tries).
            raise exc.DisconnectionError("idle connection failed its ping") from error

    event.listen(engine.sync_engine, "checkin", checkin)
    event.listen(engine.sync_engine, "checkout", checkout)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def create_reader(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions in autocommit mode, for reads of one statement: asyncpg then sends no
    BEGIN and no ROLLBACK around them. Never for writes that must commit together."""
    reader = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(reader, expire_on_commit=False)


def migrate(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision``. Synchronous: call outside a loop."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = normalize_url(url)
    command.upgrade(config, revision)
