"""Access tracking off the read path: searches note what they returned here, and one
batched UPDATE a second folds it into ``access_count`` / ``last_accessed_at``."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.observability import get_logger

__all__ = ["AccessTracker"]

log = get_logger("cognitionos.memory")

_FLUSH = text(
    """
    UPDATE memories AS m
    SET access_count = m.access_count + t.n, last_accessed_at = :at
    FROM unnest(CAST(:ids AS uuid[]), CAST(:counts AS int[])) AS t(id, n)
    WHERE m.id = t.id
    """
)


class AccessTracker:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, interval: float = 1.0
    ) -> None:
        self.sessionmaker = sessionmaker
        self.interval = interval
        self._pending: Counter[uuid.UUID] = Counter()
        self._task: asyncio.Task[None] | None = None

    def touch(self, ids: list[uuid.UUID]) -> None:
        self._pending.update(ids)

    async def flush(self) -> int:
        if not self._pending:
            return 0
        pending, self._pending = self._pending, Counter()
        async with self.sessionmaker() as session:
            await session.execute(
                _FLUSH,
                {
                    "ids": list(pending),
                    "counts": list(pending.values()),
                    "at": datetime.now(UTC),
                },
            )
            await session.commit()
        return len(pending)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # access counts are statistics: log and go on
                log.warning("flushing memory access counts failed", exc_info=True)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="memory-access")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()
