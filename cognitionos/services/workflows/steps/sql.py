"""SQL: one read-only query with a statement timeout and a row cap."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.db import create_engine, create_sessionmaker
from cognitionos.services.workflows.steps.base import (
    StepContext,
    StepFailure,
    register,
    require_fields,
)

__all__ = ["SqlStep", "jsonable"]

_TARGETS: dict[str, async_sessionmaker[AsyncSession]] = {}


def jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _target(ctx: StepContext) -> async_sessionmaker[AsyncSession]:
    url = ctx.settings.sql_step_database_url
    if url is None:
        if ctx.settings.is_production:
            raise StepFailure(
                "SQL steps need COGNITIONOS_SQL_STEP_DATABASE_URL in production "
                "(a database or role they may read)",
                retryable=False,
            )
        return ctx.sessionmaker
    if url not in _TARGETS:  # one pool per target for the life of the worker
        _TARGETS[url] = create_sessionmaker(create_engine(url, pool_size=2))
    return _TARGETS[url]


class SqlStep:
    name: ClassVar[str] = "SQL"
    templated: ClassVar[tuple[str, ...]] = ("params",)  # never the query: no injection
    waits_for_approval: ClassVar[bool] = False
    inline: ClassVar[bool] = False

    def validate(self, config: dict[str, Any], *, field: str) -> None:
        require_fields(config, field, {"query": str}, {"params": dict})

    async def run(self, ctx: StepContext, config: dict[str, Any]) -> Any:
        settings = ctx.settings
        cap = settings.sql_max_rows
        async with _target(ctx)() as session:
            try:
                async with session.begin():
                    await session.execute(text("SET TRANSACTION READ ONLY"))
                    timeout_ms = int(settings.sql_statement_timeout_ms)
                    await session.execute(text(f"SET LOCAL statement_timeout = {timeout_ms}"))
                    result = await session.execute(
                        text(config["query"]), config.get("params") or {}
                    )
                    if not getattr(result, "returns_rows", True):  # DML/DDL would have no rows
                        return {"columns": [], "rows": [], "truncated": False}
                    columns = list(result.keys())
                    rows = result.fetchmany(cap + 1)
            except DBAPIError as exc:
                message = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                timed_out = "statement timeout" in message
                raise StepFailure(f"SQL failed: {message}", retryable=timed_out) from None
        return {
            "columns": columns,
            "rows": [[jsonable(v) for v in row] for row in rows[:cap]],
            "truncated": len(rows) > cap,
        }


register(SqlStep())
