"""Readiness of the database, Redis and the worker, each within a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["HealthReport", "check_health"]

WORKER_HEALTH_KEY = "arq:queue:health-check"


@dataclass(frozen=True)
class HealthReport:
    database: str
    redis: str
    worker: str

    @property
    def ready(self) -> bool:
        # The worker is informative: web replicas are ready without one.
        return self.database == "ok" and self.redis == "ok"

    @property
    def status(self) -> str:
        return "ok" if self.ready else "fail"


async def _probe(check: Awaitable[object], within: float) -> str:
    try:
        await asyncio.wait_for(check, within)
    except TimeoutError:
        return f"error: no answer within {within:g}s"
    except Exception as exc:  # any failure means "not ready", and says why
        return f"error: {type(exc).__name__}: {exc}"[:300]
    return "ok"


async def _db(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        await session.execute(text("SELECT 1"))


async def _worker(redis: Redis) -> str:
    try:
        beat = await asyncio.wait_for(redis.get(WORKER_HEALTH_KEY), 1.0)
    except Exception:  # Redis trouble is reported by the redis probe
        return "unknown"
    return "ok" if beat else "no worker heartbeat"


async def check_health(
    *, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis, within: float = 1.0
) -> HealthReport:
    database, cache, worker = await asyncio.gather(
        _probe(_db(sessionmaker), within), _probe(redis.ping(), within), _worker(redis)
    )
    return HealthReport(database=database, redis=cache, worker=worker)
