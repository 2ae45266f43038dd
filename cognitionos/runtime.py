"""One runtime per process: every client and service, built once and closed once.

``async with Runtime.start(settings, role=...) as runtime:`` builds the database pools,
Redis, the pub/sub hub, the template renderer (its render processes), the LLM router,
the memory service (and its embedder), the workflow engine and the step runner, each
handed what it needs in its constructor. ``create_app``'s lifespan and the worker's
start both use it; in the embedded mode (``serve`` with the worker in-process) web and
worker share one runtime: one set of pools, one renderer, one router, one embedder.

Roles: ``web`` serves the API; ``worker`` runs steps (and has the SQL-step pool);
``embedded`` does both.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cognitionos.config import ConfigError, Settings
from cognitionos.db import create_engine, create_reader, create_sessionmaker
from cognitionos.jobs import supervise
from cognitionos.jobs.dispatch import ArqDispatcher
from cognitionos.observability import Metrics, configure_tracing, get_logger
from cognitionos.observability.metrics import serve_metrics
from cognitionos.pubsub import PubSubHub
from cognitionos.services.agents import AgentService
from cognitionos.services.agents import seed as seed_agents
from cognitionos.services.llm import Router
from cognitionos.services.memory import MemoryService
from cognitionos.services.notifications import NotificationService
from cognitionos.services.templating import TemplateRenderer
from cognitionos.services.workflows import (
    Dispatcher,
    Engine,
    SqlPool,
    StepDeps,
    StepRunner,
)

__all__ = ["Role", "Runtime", "run_worker"]

log = get_logger("cognitionos.runtime")
Role = Literal["web", "worker", "embedded"]


@dataclass(frozen=True, eq=False)
class Runtime:
    settings: Settings
    role: Role
    metrics: Metrics | None
    database: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Sessions without a transaction (autocommit): for one-statement reads, which then
    # cost one round trip instead of three (BEGIN, the read, ROLLBACK).
    reader: async_sessionmaker[AsyncSession]
    # One client for everything; arq's subclass also enqueues. No connection is made
    # at start, so a web process starts (and reports 503) while Redis is down.
    redis: ArqRedis
    pubsub: PubSubHub  # started only where subscriptions are served
    renderer: TemplateRenderer  # the render processes of every template
    llm: Router
    memory: MemoryService
    agents: AgentService
    notifications: NotificationService
    sql: SqlPool | None  # SQL steps' own role and pool, where steps run
    engine: Engine
    steps: StepRunner
    _prepared: set[str] = field(default_factory=set)

    @classmethod
    @asynccontextmanager
    async def start(
        cls,
        settings: Settings,
        *,
        role: Role,
        metrics: Metrics | None = None,
        dispatcher: Dispatcher | None = None,
    ) -> AsyncIterator[Runtime]:
        """Build the runtime, yield it, close everything it opened (in reverse).
        ``dispatcher``: how ready steps reach a worker (arq unless given)."""
        if not settings.database_url or not settings.redis_url:
            raise ConfigError("a runtime needs DATABASE_URL and REDIS_URL (serve resolves them)")
        async with AsyncExitStack() as stack:
            # The render processes of every template this process renders.
            renderer = stack.enter_context(TemplateRenderer.from_settings(settings))
            database = create_engine(settings.database_url, pool_size=settings.db_pool_size)
            stack.push_async_callback(database.dispose)
            sessionmaker = create_sessionmaker(database)
            redis = ArqRedis.from_url(settings.redis_url, health_check_interval=30)
            stack.push_async_callback(redis.aclose)
            pubsub = PubSubHub(
                settings.redis_url,
                queue_size=settings.pubsub_queue_size,
                on_reconnect=metrics.pubsub_reconnects.labels("hub").inc if metrics else None,
            )
            if role != "worker":
                pubsub.start()
                stack.push_async_callback(pubsub.stop)
            llm = Router(settings, sessionmaker, metrics=metrics)
            stack.push_async_callback(llm.aclose)
            memory = MemoryService(settings, sessionmaker, metrics=metrics)
            stack.push_async_callback(memory.stop)
            # What the engine's ports (services/workflows/ports.py) are, in this process.
            agents = AgentService(
                settings=settings,
                sessionmaker=sessionmaker,
                redis=redis,
                llm=llm,
                renderer=renderer,
            )
            notifications = NotificationService(settings, renderer)
            url = settings.sql_step_database_url
            sql = SqlPool(url, size=settings.sql_step_pool_size) if url and role != "web" else None
            if sql is not None:
                stack.push_async_callback(sql.aclose)
            engine = Engine(
                settings=settings,
                sessionmaker=sessionmaker,
                redis=redis,
                dispatcher=dispatcher or ArqDispatcher(redis),
                notifications=notifications,
                renderer=renderer,
                metrics=metrics,
            )
            stack.callback(engine.close)
            deps = StepDeps(
                settings=settings,
                sessionmaker=sessionmaker,
                renderer=renderer,
                redis=redis,
                llm=llm,
                memory=memory,
                agents=agents,
                notifications=notifications,
                sql=sql,
            )
            owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
            steps = StepRunner(engine=engine, deps=deps, owner=owner)
            stack.push_async_callback(steps.aclose)
            runtime = cls(
                settings=settings,
                role=role,
                metrics=metrics,
                database=database,
                sessionmaker=sessionmaker,
                reader=create_reader(database),
                redis=redis,
                pubsub=pubsub,
                renderer=renderer,
                llm=llm,
                memory=memory,
                agents=agents,
                notifications=notifications,
                sql=sql,
                engine=engine,
                steps=steps,
            )
            try:  # a worker's start tries again, and refuses to start without it
                await runtime.prepare()
            except Exception:
                log.warning("preparing the database failed; is it up?", exc_info=True)
            yield runtime

    async def prepare(self) -> None:
        """What needs the database once per process: the default agents and v1 prompts,
        and the memory store's check. Done once; what failed is tried again next call."""
        if "agents" not in self._prepared:
            await seed_agents(self.sessionmaker, self.settings)
            self._prepared.add("agents")
        if "memory" not in self._prepared:
            await self.memory.start()
            self._prepared.add("memory")


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """``cognitionos worker``: a worker process's own tracer, metrics and runtime, and
    its worker until ``stop`` is set."""
    configure_tracing(
        service_name=f"{settings.otel_service_name}-worker",
        otlp_endpoint=settings.otlp_endpoint,
        role="worker",
    )
    metrics = exporter = None
    if settings.worker_metrics_port:
        metrics = Metrics()
        exporter = serve_metrics(
            metrics,
            host=settings.worker_metrics_host,
            port=settings.worker_metrics_port,
            token=settings.metrics_token,
        )
        log.info("worker metrics", port=settings.worker_metrics_port)
    try:
        async with Runtime.start(settings, role="worker", metrics=metrics) as runtime:
            await supervise(runtime, stop)
    finally:
        if exporter is not None:
            await asyncio.to_thread(exporter.shutdown)
            exporter.server_close()
