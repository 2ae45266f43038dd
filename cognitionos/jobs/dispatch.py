"""Dispatch ready steps as arq jobs. The job id carries the dispatch sequence, so
re-dispatching is idempotent and a stale job is refused at claim time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from arq.connections import ArqRedis

from cognitionos.services.workflows import Dispatch

__all__ = ["RUN_STEP", "ArqDispatcher"]

RUN_STEP = "run_step"


class ArqDispatcher:
    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool

    async def dispatch(self, items: Sequence[Dispatch]) -> None:
        await asyncio.gather(
            *(
                self.pool.enqueue_job(
                    RUN_STEP,
                    str(item.step_id),
                    item.seq,
                    _job_id=item.job_id,
                    _defer_by=item.defer_seconds,
                )
                for item in items
            )
        )
