"""``health``: the same readiness report as /health/ready."""

from __future__ import annotations

from importlib.metadata import version

import strawberry
from strawberry import Info

from cognitionos.context import Context
from cognitionos.schema.common import Health
from cognitionos.services.health import check_health

__all__ = ["HealthQuery"]


@strawberry.type
class HealthQuery:
    @strawberry.field(description="Readiness of the database, Redis and the worker.")
    async def health(self, info: Info[Context, None]) -> Health:
        services = info.context.services
        report = await check_health(sessionmaker=services.sessionmaker, redis=services.redis)
        return Health(
            status=report.status,
            database=report.database,
            redis=report.redis,
            worker=report.worker,
            version=version("cognitionos"),
        )
