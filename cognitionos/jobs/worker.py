"""The arq worker. Jobs take ids, load what they need in their own session.

arq only transports: a step's timeout, retries and recovery after a crash are decided
by the engine (lease + reconciler), so arq's own job timeout is set far beyond any
step's and its retry count is irrelevant (the job never raises).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
import warnings
from datetime import timedelta
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, func

from cognitionos.config import Settings
from cognitionos.db import create_engine, create_reader, create_sessionmaker
from cognitionos.jobs._waking import WakingWorker
from cognitionos.jobs.dispatch import RUN_STEP, ArqDispatcher
from cognitionos.jobs.steps import engine_loops, run_eagerly, run_step
from cognitionos.observability import Metrics, configure_tracing, get_logger
from cognitionos.observability.metrics import serve_metrics
from cognitionos.services.agents import seed as seed_agents
from cognitionos.services.health import check_health
from cognitionos.services.llm import Router
from cognitionos.services.memory import MemoryService
from cognitionos.services.templating import close_renderer, open_renderer
from cognitionos.services.workflows import Engine, SqlPool

__all__ = ["create_worker", "health_job", "redis_settings", "supervise"]

log = get_logger("cognitionos.worker")
_ARQ_TIMEOUT = timedelta(days=2)


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = 10
    settings.conn_retry_delay = 1
    return settings


async def health_job(ctx: dict[str, Any]) -> dict[str, str]:
    """Round trip through the queue: proves a worker is consuming and can reach the DB."""
    report = await check_health(sessionmaker=ctx["sessionmaker"], redis=ctx["redis"])
    return {
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "database": report.database,
        "redis": report.redis,
    }


async def _release(ctx: dict[str, Any]) -> None:
    """Stop the loops and eager steps, close the pool; safe to call twice."""
    workflow_engine = ctx.pop("workflow_engine", None)
    eager = workflow_engine.eager_tasks if workflow_engine is not None else set()
    for task in [*ctx.pop("loops", []), *eager]:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if workflow_engine is not None and workflow_engine.llm is not None:
        await workflow_engine.llm.aclose()
    if workflow_engine is not None and workflow_engine.memory is not None:
        await workflow_engine.memory.stop()
    if workflow_engine is not None and workflow_engine.sql is not None:
        await workflow_engine.sql.aclose()
    if ctx.pop("renderer_open", False):
        close_renderer()
    engine = ctx.pop("engine", None)
    if engine is not None:
        await engine.dispose()
        log.info("worker stopped")


async def supervise(
    settings: Settings, stop: asyncio.Event, *, metrics: Metrics | None = None
) -> None:
    """Run a worker until ``stop`` is set, starting it again whenever Redis goes away
    (arq's own worker exits on a lost connection). Steps in flight are healed by the
    reconciler, so a restart costs a few seconds, never work."""
    # A separate worker's own provider; inside ``serve`` the app's is already there.
    configure_tracing(
        service_name=f"{settings.otel_service_name}-worker",
        otlp_endpoint=settings.otlp_endpoint,
        role="worker",
    )
    exporter = None
    if metrics is None and settings.worker_metrics_port:
        metrics = Metrics()
        exporter = serve_metrics(
            metrics,
            host=settings.worker_metrics_host,
            port=settings.worker_metrics_port,
            token=settings.metrics_token,
        )
        log.info("worker metrics", port=settings.worker_metrics_port)
    try:
        await _run(settings, stop, metrics)
    finally:
        if exporter is not None:
            await asyncio.to_thread(exporter.shutdown)
            exporter.server_close()


async def _run(settings: Settings, stop: asyncio.Event, metrics: Metrics | None) -> None:
    delay = 0.5
    while not stop.is_set():
        worker = create_worker(settings, handle_signals=False, metrics=metrics)
        running = asyncio.create_task(worker.main(), name="arq-worker")
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if running.done() and not running.cancelled() and running.exception() is not None:
                log.warning(
                    "worker lost its connection; restarting",
                    error=str(running.exception()),
                    delay=delay,
                )
                await asyncio.wait({stopping}, timeout=delay)
                delay = min(delay * 2, 5.0)
            else:
                delay = 0.5
        finally:
            for task in (running, stopping):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            with contextlib.suppress(Exception), warnings.catch_warnings():
                # arq's close() calls redis' deprecated close(); harmless.
                warnings.simplefilter("ignore", DeprecationWarning)
                await worker.close()
            await _release(worker.ctx)


def _sql_pool(settings: Settings) -> SqlPool | None:
    """SQL steps' own pool (their role is checked before the first one runs)."""
    url = settings.sql_step_database_url
    return SqlPool(url, size=settings.sql_step_pool_size) if url else None


def create_worker(
    settings: Settings, *, handle_signals: bool = True, metrics: Metrics | None = None
) -> Worker:
    assert settings.database_url and settings.redis_url, "resolve the service URLs first"
    database_url = settings.database_url

    async def on_startup(ctx: dict[str, Any]) -> None:
        engine = create_engine(database_url, pool_size=settings.db_pool_size)
        ctx["engine"] = engine
        ctx["sessionmaker"] = create_sessionmaker(engine)
        ctx["settings"] = settings
        open_renderer(settings)
        ctx["renderer_open"] = True
        ctx["worker_id"] = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        workflow_engine = Engine(
            settings=settings,
            sessionmaker=ctx["sessionmaker"],
            redis=ctx["redis"],
            dispatcher=ArqDispatcher(ctx["redis"]),
            metrics=metrics,
            sql=_sql_pool(settings),
        )
        workflow_engine.llm = Router(settings, ctx["sessionmaker"], metrics=metrics)
        await seed_agents(ctx["sessionmaker"], settings)
        workflow_engine.memory = MemoryService(settings, ctx["sessionmaker"], metrics=metrics)
        await workflow_engine.memory.start()
        ctx["workflow_engine"] = workflow_engine
        workflow_engine.local_runner = lambda item: run_eagerly(ctx, item)
        ctx["loops"] = engine_loops(workflow_engine, create_reader(engine))
        log.info("worker started", worker=ctx["worker_id"], max_jobs=settings.worker_max_jobs)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await _release(ctx)

    return WakingWorker(
        functions=[
            func(health_job, name="health", max_tries=1),
            func(run_step, name=RUN_STEP, max_tries=1000, timeout=_ARQ_TIMEOUT, keep_result=0),
        ],
        redis_settings=redis_settings(settings.redis_url),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        poll_delay=settings.worker_poll_delay_seconds,
        idle_poll=settings.worker_idle_poll_seconds,
        on_reconnect=metrics.pubsub_reconnects.labels("wake").inc if metrics else None,
        max_jobs=settings.worker_max_jobs,
        handle_signals=handle_signals,
        health_check_interval=10,
        keep_result=3600,
    )
