"""``create_app(settings)``: routes, middleware and a lifespan that owns every client."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from cognitionos.config import ConfigError, Settings
from cognitionos.context import Services
from cognitionos.jobs import supervise
from cognitionos.observability import Metrics, configure_tracing, get_logger
from cognitionos.runtime import Role, Runtime
from cognitionos.services.auth import CredentialCache, TokenPolicy
from cognitionos.services.ratelimit import RateLimiter
from cognitionos.services.workflows.snapshots import ExecutionSnapshots
from cognitionos.web import health
from cognitionos.web.console import console_routes
from cognitionos.web.graphql_http import GraphQLHTTP
from cognitionos.web.graphql_ws import GraphQLWebSocket
from cognitionos.web.middleware import HTTPTracing, RequestContextMiddleware
from cognitionos.web.schema import build_schema

__all__ = ["create_app", "server_config"]

log = get_logger("cognitionos.app")
VENDOR = Path(__file__).resolve().parent.parent / "vendor"


async def _graphql_ws(websocket: WebSocket) -> None:
    endpoint: GraphQLWebSocket = websocket.app.state.graphql_ws
    await endpoint.handle(websocket)


async def _graphql(request: Request) -> Response:
    endpoint: GraphQLHTTP = request.app.state.graphql
    return await endpoint(request)


def create_app(settings: Settings) -> Starlette:
    """Build the ASGI app. ``settings`` must name the database and Redis URLs."""
    settings.check_production()
    if not settings.database_url or not settings.redis_url:
        raise ConfigError("create_app needs DATABASE_URL and REDIS_URL (serve resolves them)")
    if not settings.secret_key:
        raise ConfigError("SECRET_KEY is not set")
    metrics = Metrics()
    configure_tracing(service_name=settings.otel_service_name, otlp_endpoint=settings.otlp_endpoint)
    schema = build_schema(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # With the worker in-process, web and worker share this one runtime.
        role: Role = "embedded" if settings.run_worker_in_process else "web"
        async with Runtime.start(settings, role=role, metrics=metrics) as runtime:
            async with _serving(app, runtime, schema):
                yield

    routes = [
        Route("/graphql", _graphql, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        WebSocketRoute("/graphql", _graphql_ws),
        Route("/health/live", health.live),
        Route("/health/ready", health.ready),
        Route("/metrics", health.metrics),
        # Third-party browser assets (GraphiQL, React) live in the checkout's vendor/.
        Mount("/static/graphiql", StaticFiles(directory=VENDOR / "graphiql", check_dir=False)),
        *console_routes(),  # the web console at / (static files, no build step)
    ]
    middleware = [Middleware(HTTPTracing), Middleware(RequestContextMiddleware, metrics=metrics)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    return app


@contextlib.asynccontextmanager
async def _serving(app: Starlette, runtime: Runtime, schema: Any) -> AsyncIterator[None]:
    """The web side of a runtime (and its in-process worker), as long as the app runs."""
    settings = runtime.settings
    assert runtime.metrics is not None
    credentials = CredentialCache(
        runtime.reader,
        TokenPolicy(
            secret=settings.jwt_secret,
            issuer=settings.jwt_issuer,
            access_ttl_seconds=settings.access_token_ttl_seconds,
            refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
        ),
        max_age=settings.credential_cache_seconds,
        size=settings.credential_cache_size,
    )
    services = Services(
        settings=settings,
        sessionmaker=runtime.sessionmaker,
        reader=runtime.reader,
        redis=runtime.redis,
        rate_limiter=RateLimiter(runtime.redis),
        metrics=runtime.metrics,
        workflow_engine=runtime.engine,
        pubsub=runtime.pubsub,
        llm=runtime.llm,
        memory=runtime.memory,
        agents=runtime.agents,
        renderer=runtime.renderer,
        credentials=credentials,
        snapshots=ExecutionSnapshots(runtime.sessionmaker),
    )
    app.state.services = services
    graphql = app.state.graphql = GraphQLHTTP(schema, services)
    graphql.start()
    graphql_ws = app.state.graphql_ws = GraphQLWebSocket(schema, services)
    graphql_ws.start()
    stop_worker = asyncio.Event()
    worker_task: asyncio.Task[None] | None = None
    if runtime.role == "embedded":
        worker_task = asyncio.create_task(supervise(runtime, stop_worker), name="worker")
        log.info("worker running in-process")
    # What start-up built lives as long as the app: frozen out of the collector's way,
    # each collection walks only what requests allocate (the executions page spent a
    # third of its CPU walking ~320k start-up objects). Unfrozen at shutdown, so a
    # process that runs several apps (tests) can still collect the old ones.
    gc.collect()
    gc.freeze()
    # Fewer, larger young collections: with 1,000 open websockets the default (700)
    # set off a full collection (150-450 ms, every socket's objects walked) every
    # second or so while they joined and now and then under load: the delivery tail.
    # Measured in bench/fanout.py.
    thresholds = gc.get_threshold()
    gc.set_threshold(10_000, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        try:
            if worker_task is not None:
                stop_worker.set()
                await worker_task
            await graphql_ws.stop()
            await graphql.stop()
        finally:  # after the sockets: their subscriptions read it until they end
            await services.snapshots.aclose()


def server_config(
    app: Starlette, *, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """How uvicorn serves an app of ``create_app``; ``serve`` and the tests both use it.

    Proxy headers are read only from ``forwarded_allow_ips``: believing X-Forwarded-For
    from anyone would let a client pick the address its rate limits count against.
    """
    settings: Settings = app.state.settings
    trusted = settings.forwarded_allow_ips
    return uvicorn.Config(
        app,
        host=settings.host if host is None else host,
        port=settings.port if port is None else port,
        log_config=None,
        lifespan="on",
        ws="websockets-sansio",
        ws_max_size=settings.max_body_bytes,  # a bigger message is refused unread (1009)
        # Subscription messages are small JSON: per-message deflate would save little and
        # cost each socket ~43 KiB of zlib state and each message a compression.
        ws_per_message_deflate=False,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted) if trusted else None,
    )
