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
import warnings
from datetime import timedelta
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, func

from cognitionos.jobs._waking import WakingWorker
from cognitionos.jobs.dispatch import RUN_STEP
from cognitionos.jobs.steps import Runtime, engine_loops, run_step
from cognitionos.observability import get_logger
from cognitionos.services.health import check_health

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
    runtime: Runtime = ctx["runtime"]
    report = await check_health(sessionmaker=runtime.sessionmaker, redis=ctx["redis"])
    return {
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "database": report.database,
        "redis": report.redis,
    }


async def _release(ctx: dict[str, Any]) -> None:
    """Stop the loops; safe to call twice. The runtime outlives the arq worker."""
    loops = ctx.pop("loops", None)
    for task in loops or []:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if loops is not None:
        log.info("worker stopped")


async def supervise(runtime: Runtime, stop: asyncio.Event) -> None:
    """Run a worker on ``runtime`` until ``stop`` is set, starting it again whenever
    Redis goes away (arq's own worker exits on a lost connection). Steps in flight are
    healed by the reconciler, so a restart costs a few seconds, never work."""
    delay = 0.5
    while not stop.is_set():
        worker = create_worker(runtime, handle_signals=False)
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


def create_worker(runtime: Runtime, *, handle_signals: bool = True) -> Worker:
    settings = runtime.settings
    assert settings.redis_url, "resolve the service URLs first"

    async def on_startup(ctx: dict[str, Any]) -> None:
        await runtime.prepare()  # a failure here restarts the worker, with backoff
        ctx["runtime"] = runtime
        ctx["loops"] = engine_loops(runtime)
        log.info("worker started", worker=runtime.steps.owner, max_jobs=settings.worker_max_jobs)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await _release(ctx)

    metrics = runtime.metrics
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
