"""arq's worker, polling its queue only while it has work.

arq polls its queue every ``poll_delay`` (10 ms here, for dispatch latency): a hundred
Redis round trips a second from an idle worker. This one polls that often only while
jobs run; idle, it sleeps until a dispatch publishes on ``WAKE_CHANNEL``, until the
earliest deferred job in the queue is due, or ``idle_poll`` seconds at most (which
bounds what a lost wake-up costs). A lost subscription is made again, and
``on_reconnect`` called each time it is back (the worker counts it in its metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from arq.connections import create_pool
from arq.worker import Worker

from cognitionos.jobs.dispatch import WAKE_CHANNEL
from cognitionos.observability import get_logger

__all__ = ["WakingWorker"]

log = get_logger("cognitionos.worker")


class WakingWorker(Worker):
    def __init__(
        self,
        *args: Any,
        idle_poll: float,
        on_reconnect: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.idle_poll = idle_poll
        self._on_reconnect = on_reconnect
        self._wake = asyncio.Event()

    async def main(self) -> None:
        """arq's ``Worker.main`` (no burst mode), with the idle wait above."""
        if self._pool is None:
            self._pool = await create_pool(
                self.redis_settings,
                job_deserializer=self.job_deserializer,
                job_serializer=self.job_serializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        listener = asyncio.create_task(self._listen(), name="worker-wake")
        try:
            while True:
                self._wake.clear()
                await self._poll_iteration()
                await self._rest()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def close(self) -> None:
        """arq's ``close``, without raising the CancelledError of a job it cancels.

        arq cancels the jobs still in flight, then gathers them: a job cancelled outside
        its function (while arq records its result, or in a hook) ends cancelled, the
        gather raises CancelledError, and close stops there, before ``on_shutdown`` and
        before the pool is closed. The jobs are awaited here first, their outcome
        ignored (the engine's lease and reconciler recover a step cut short); a
        cancellation of close itself still propagates.
        """
        jobs = list(self.tasks.values())
        if not self._handle_signals:
            for job in jobs:
                job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        self.tasks.clear()
        await super().close()

    async def _rest(self) -> None:
        wait = self.poll_delay_s
        if self.job_counter == 0 and not self.tasks:
            wait = self.idle_poll
            first = await self.pool.zrange(self.queue_name, 0, 0, withscores=True)
            if first:
                due_in = first[0][1] / 1000 - time.time()
                wait = min(wait, max(due_in, self.poll_delay_s))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _listen(self) -> None:
        """Set the wake event on every published dispatch; resubscribe after a failure."""
        subscribed = lost = False
        while True:
            pubsub = self.pool.pubsub()
            try:
                await pubsub.subscribe(WAKE_CHANNEL)
                subscribed = True
                if lost:
                    lost = False
                    if self._on_reconnect is not None:
                        self._on_reconnect()
                    log.info("worker wake-up subscription is back")
                self._wake.set()  # whatever was published while we were not listening
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                lost, subscribed = lost or subscribed, False
                log.warning("worker wake-up subscription failed; retrying", error=str(exc))
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
