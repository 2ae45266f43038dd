"""The pool SQL steps run on: their own role, checked before use, reset after every step.

SQL steps never share the application's connections. Their role must not be a superuser,
must hold none of the predefined roles that reach the server's files or programs or every
table, and must not be able to read any application table; ``verify`` refuses it
otherwise. Every connection is wiped (``DISCARD ALL``) when it goes back to the pool, so
nothing a step leaves in its session (settings, prepared statements, advisory locks,
cursors, LISTENs) reaches the next step.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Text, bindparam, event, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState
from sqlalchemy.util import await_

from cognitionos.config import ConfigError
from cognitionos.db.engine import normalize_url
from cognitionos.db.models import User

__all__ = ["SqlPool", "UnsafeSqlRole"]

# Membership in any of these reads or writes the server's files, runs programs on it, or
# reads every table.
_POWERFUL_ROLES = [
    "pg_execute_server_program",
    "pg_read_all_data",
    "pg_read_server_files",
    "pg_write_all_data",
    "pg_write_server_files",
]

_CHECK = text(
    """
    SELECT current_user::text AS role,
           EXISTS (SELECT FROM pg_roles r
                   WHERE r.rolsuper AND pg_has_role(current_user, r.oid, 'MEMBER')) AS superuser,
           ARRAY(SELECT r.rolname::text FROM pg_roles r
                 WHERE r.rolname = ANY(:powerful) AND pg_has_role(current_user, r.oid, 'MEMBER')
                 ORDER BY 1) AS powers,
           ARRAY(SELECT t FROM unnest(CAST(:tables AS text[])) AS t
                 WHERE to_regclass(t) IS NOT NULL
                   AND has_any_column_privilege(to_regclass(t), 'SELECT')
                 ORDER BY 1) AS readable
    """
).bindparams(
    bindparam("powerful", type_=ARRAY(Text)),
    bindparam("tables", type_=ARRAY(Text)),
)


class UnsafeSqlRole(ConfigError):
    """The role SQL steps would run as can reach more than SQL steps may."""


def _application_tables() -> list[str]:
    return [f"{t.schema or 'public'}.{t.name}" for t in User.metadata.sorted_tables]


def _reset_session(
    dbapi_connection: Any, record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    """On every return to the pool: end the step's transaction (never committed, so a
    ``set_config(…, false)`` ends with it) and discard whatever else the session kept."""
    if state.terminate_only or not state.asyncio_safe or record.driver_connection is None:
        return  # the connection is being thrown away, or cannot be awaited here
    dbapi_connection.rollback()
    # An error here makes the pool throw the connection away instead.
    await_(record.driver_connection.execute("DISCARD ALL"))


class SqlPool:
    """A small bounded pool on ``COGNITIONOS_SQL_STEP_DATABASE_URL``, owned by the worker
    that runs steps and closed with it."""

    def __init__(self, url: str, *, size: int) -> None:
        self.engine = create_async_engine(
            normalize_url(url),
            pool_size=size,
            max_overflow=0,
            pool_timeout=30,
            pool_recycle=1800,
            # DISCARD ALL drops server-side prepared statements, so none may be cached.
            connect_args={"statement_cache_size": 0, "prepared_statement_cache_size": 0},
        )
        event.listen(self.engine.sync_engine, "reset", _reset_session)
        self._verified = False
        self._verifying = asyncio.Lock()

    async def verify(self) -> None:
        """Raise ``UnsafeSqlRole`` naming what the role can reach that it must not.
        Checked once per pool (at start-up, or before its first step)."""
        if self._verified:
            return
        async with self._verifying:
            if self._verified:
                return
            async with self.engine.connect() as conn:
                row = (
                    await conn.execute(
                        _CHECK, {"powerful": _POWERFUL_ROLES, "tables": _application_tables()}
                    )
                ).one()
            problems = []
            if row.superuser:
                problems.append("it is a superuser")
            elif row.powers:
                problems.append(f"it is a member of {', '.join(row.powers)}")
            if row.readable:
                names = ", ".join(t.removeprefix("public.") for t in row.readable)
                problems.append(f"it can read the application's tables ({names})")
            if problems:
                raise UnsafeSqlRole(
                    f"refusing to run SQL steps as role {row.role!r}: {'; '.join(problems)}. "
                    "Point COGNITIONOS_SQL_STEP_DATABASE_URL at a role that is no superuser "
                    "and cannot read the application's tables (README: Security model)"
                )
            self._verified = True

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A verified connection; whatever the step does is rolled back and discarded."""
        await self.verify()
        async with self.engine.connect() as conn:
            yield conn

    async def aclose(self) -> None:
        await self.engine.dispose()
