"""Dispatch ready steps as arq jobs. The job id carries the dispatch sequence, so
re-dispatching is idempotent and a stale job is refused at claim time. Each dispatch
also wakes idle workers (``WAKE_CHANNEL``): they do not poll an empty queue. A job
carries the trace context its step continues (``observability/tracing.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from arq.connections import ArqRedis

from cognitionos.services.workflows import Dispatch

__all__ = ["RUN_STEP", "WAKE_CHANNEL", "ArqDispatcher"]

RUN_STEP = "run_step"
WAKE_CHANNEL = "cognitionos:jobs:wake"


def _traced(item: Dispatch) -> dict[str, Any]:
    """Only when traced: a worker of the release before takes the job too."""
    return {"trace": item.trace} if item.trace else {}


class ArqDispatcher:
    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool

    async def dispatch(self, items: Sequence[Dispatch]) -> None:
        if not items:
            return
        await asyncio.gather(
            *(
                self.pool.enqueue_job(
                    RUN_STEP,
                    str(item.step_id),
                    item.seq,
                    _job_id=item.job_id,
                    _defer_by=item.defer_seconds,
                    **_traced(item),
                )
                for item in items
            )
        )
        # A lost wake-up costs at most the worker's idle poll (and a lost job, the grace).
        await self.pool.publish(WAKE_CHANNEL, b"")
