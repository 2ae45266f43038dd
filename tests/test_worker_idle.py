"""An idle worker does not poll its queue; a dispatch wakes it, and a deferred job
still runs when it is due."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import warnings
from typing import Any

from arq.connections import ArqRedis, create_pool
from arq.worker import func

from cognitionos.jobs import redis_settings
from cognitionos.jobs._waking import WakingWorker
from cognitionos.jobs.dispatch import RUN_STEP, ArqDispatcher
from cognitionos.services.workflows import Dispatch
from tests.conftest import Stack

QUEUE = "tests:waking-worker"


async def test_an_idle_worker_wakes_for_dispatches_and_deferred_jobs(stack: Stack) -> None:
    ran: asyncio.Queue[str] = asyncio.Queue()

    async def run_step(ctx: dict[str, Any], step_id: str, seq: int) -> None:
        await ran.put(step_id)

    worker = WakingWorker(
        functions=[func(run_step, name=RUN_STEP)],
        redis_settings=redis_settings(stack.redis.url),
        queue_name=QUEUE,
        poll_delay=0.01,
        idle_poll=3600,  # an hour: only a wake-up or a due deferred job can start a job
        handle_signals=False,
    )
    running = asyncio.create_task(worker.main())
    pool: ArqRedis = await create_pool(redis_settings(stack.redis.url), default_queue_name=QUEUE)
    try:
        await asyncio.sleep(0.5)  # started, polled once, resting
        now, later = Dispatch(uuid.uuid4(), 1), Dispatch(uuid.uuid4(), 1, defer_seconds=1.0)
        await ArqDispatcher(pool).dispatch([now])
        assert await asyncio.wait_for(ran.get(), 20) == str(now.step_id)
        # Woken by this dispatch, the worker sees the deferred job and rests until it is due.
        await ArqDispatcher(pool).dispatch([later])
        assert await asyncio.wait_for(ran.get(), 20) == str(later.step_id)
    finally:
        running.cancel()
        with contextlib.suppress(BaseException):
            await running
        with contextlib.suppress(Exception), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # arq's close() calls close()
            await worker.close()
        await pool.aclose()


async def test_closing_a_worker_with_a_job_in_flight_does_not_raise(stack: Stack) -> None:
    """A job cancelled by close() after its function returned (in arq's bookkeeping or a
    hook) ends cancelled; close() still returns, runs on_shutdown and closes the pool."""
    returned, shut_down = asyncio.Event(), asyncio.Event()

    async def run_step(ctx: dict[str, Any], step_id: str, seq: int) -> None:
        returned.set()

    async def after_job_end(ctx: dict[str, Any]) -> None:
        await asyncio.Event().wait()  # close() cancels the job here, outside its function

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        shut_down.set()

    worker = WakingWorker(
        functions=[func(run_step, name=RUN_STEP)],
        redis_settings=redis_settings(stack.redis.url),
        queue_name=QUEUE + ":close",
        poll_delay=0.01,
        idle_poll=3600,
        handle_signals=False,
        after_job_end=after_job_end,
        on_shutdown=on_shutdown,
    )
    running = asyncio.create_task(worker.main())
    pool: ArqRedis = await create_pool(
        redis_settings(stack.redis.url), default_queue_name=QUEUE + ":close"
    )
    try:
        await ArqDispatcher(pool).dispatch([Dispatch(uuid.uuid4(), 1)])
        await asyncio.wait_for(returned.wait(), 20)
    finally:
        running.cancel()
        with contextlib.suppress(BaseException):
            await running
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # arq's close() calls close()
            await worker.close()
        await pool.aclose()
    assert shut_down.is_set()
    assert worker._pool is None
