"""SQL: one read-only query, on SQL steps' own role and pool, with a statement timeout and
a row cap."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import StrictStr
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cognitionos.services.workflows.steps.base import (
    Kind,
    StepConfig,
    StepContext,
    StepFailure,
    register,
)
from cognitionos.services.workflows.steps.sql_pool import SqlPool, UnsafeSqlRole

__all__ = ["SqlConfig", "SqlStep", "jsonable"]


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


def _pool(ctx: StepContext) -> SqlPool:
    if ctx.sql is None:  # never the application's own connections
        raise StepFailure(
            "SQL steps need COGNITIONOS_SQL_STEP_DATABASE_URL: a role that cannot read the "
            "application's tables (the embedded mode creates one itself)",
            retryable=False,
        )
    return ctx.sql


class SqlConfig(StepConfig):
    query: StrictStr
    params: dict[str, Any] = {}


class SqlStep(Kind):
    name: ClassVar[str] = "SQL"
    config_model = SqlConfig
    templated: ClassVar[tuple[str, ...]] = ("params",)  # never the query: no injection

    async def run(self, ctx: StepContext, raw: dict[str, Any]) -> Any:
        config = SqlConfig.read(raw)
        settings = ctx.settings
        cap = settings.sql_max_rows
        timeout_ms = int(settings.sql_statement_timeout_ms)
        try:
            # Never committed: closing rolls the transaction back, the pool discards the rest.
            async with _pool(ctx).connect() as conn:
                await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {timeout_ms}")
                result = await conn.execute(text(config.query), config.params)
                if not result.returns_rows:  # e.g. PREPARE
                    return {"columns": [], "rows": [], "truncated": False}
                columns = list(result.keys())
                rows = result.fetchmany(cap + 1)
        except UnsafeSqlRole as exc:
            raise StepFailure(str(exc), retryable=False) from None
        except DBAPIError as exc:
            message = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            timed_out = "statement timeout" in message
            raise StepFailure(f"SQL failed: {message}", retryable=timed_out) from None
        except (PoolTimeout, OSError) as exc:
            raise StepFailure(f"SQL database unavailable: {exc}") from None
        return {
            "columns": columns,
            "rows": [[jsonable(v) for v in row] for row in rows[:cap]],
            "truncated": len(rows) > cap,
        }


register(SqlStep())
