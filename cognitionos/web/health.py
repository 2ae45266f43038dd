"""``/health/live``, ``/health/ready`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib

from arq.constants import default_queue_name as QUEUE
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cognitionos.observability.metrics import CONTENT_TYPE_LATEST, bearer_matches
from cognitionos.services.health import check_health

__all__ = ["live", "metrics", "ready"]


async def live(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    services = request.app.state.services
    report = await check_health(sessionmaker=services.sessionmaker, redis=services.redis)
    body = {
        "status": report.status,
        "checks": {"database": report.database, "redis": report.redis, "worker": report.worker},
    }
    return JSONResponse(body, status_code=200 if report.ready else 503)


async def metrics(request: Request) -> Response:
    services = request.app.state.services
    token = services.settings.metrics_token
    if token is not None and not bearer_matches(request.headers.get("authorization"), token):
        return Response(
            "metrics need Authorization: Bearer <COGNITIONOS_METRICS_TOKEN>\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": "Bearer"},
        )
    pool = services.sessionmaker.kw["bind"].pool
    services.metrics.db_pool_checked_out.set(pool.checkedout())
    services.metrics.ws_subscriptions.set(services.pubsub.subscriber_count)
    with contextlib.suppress(Exception):  # Redis down: /health/ready says so
        depth = await asyncio.wait_for(services.redis.zcard(QUEUE), 0.5)
        services.metrics.queue_depth.set(depth)
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
