"""What the subscribers of executions read again and again, read once per server.

An execution's subscribers (a thousand sockets may follow one) all need the same rows:
the workflow version it runs, and, for an event stored before events carried their
state or for ``execution.steps``, the execution and its steps as they are now. One
``ExecutionSnapshots`` per served app holds them: made when the app starts serving,
closed when it stops (its reads cancelled, its rows dropped), so nothing it holds
outlives the event loop it was made on (tests run many apps in one process). Both
caches are bounded, least recently used first out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.db import models

__all__ = ["Current", "ExecutionSnapshots"]

Current = tuple[models.WorkflowExecution, list[models.StepExecution]]


class ExecutionSnapshots:
    """Rows shared by every subscriber of a server: ``current`` (an execution and its
    steps, one read per execution version) and ``workflow`` (a workflow version, one
    read per version: versions never change). ``aclose`` cancels the reads under way
    and empties both."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        size: int = 512,
        workflows: int = 512,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._size = size
        self._workflows_size = workflows
        self._current: OrderedDict[tuple[uuid.UUID, int], asyncio.Task[Current]]
        self._current = OrderedDict()
        # ORM rows or plain rows (db/rows.py) of the same shape, read-only either way.
        self._workflows: OrderedDict[uuid.UUID, Any] = OrderedDict()
        # Every read under way, also those already pushed out of ``_current`` (their
        # waiters still hold them): what ``aclose`` cancels.
        self._reads: set[asyncio.Task[Current]] = set()
        self._closed = False

    @property
    def cached(self) -> int:
        """Entries held: execution versions and workflow versions."""
        return len(self._current) + len(self._workflows)

    @property
    def reads(self) -> int:
        """Reads under way."""
        return len(self._reads)

    async def current(self, execution_id: uuid.UUID, version: int) -> Current:
        """The execution and its steps as they are now: one read per execution version,
        however many subscribers ask at once."""
        if self._closed:
            return await self._load(execution_id)
        key = (execution_id, version)
        task = self._current.get(key)
        if task is None:
            while len(self._current) >= self._size:
                self._current.popitem(last=False)
            task = asyncio.ensure_future(self._load(execution_id))
            self._reads.add(task)
            task.add_done_callback(self._reads.discard)
            self._current[key] = task
        else:
            self._current.move_to_end(key)
        try:
            return await asyncio.shield(task)
        except Exception:
            if self._current.get(key) is task:
                del self._current[key]  # do not keep a failure
            raise

    async def _load(self, execution_id: uuid.UUID) -> Current:
        async with self._sessionmaker() as session:
            row = await session.get(models.WorkflowExecution, execution_id)
            assert row is not None
            steps = list(
                (
                    await session.scalars(
                        select(models.StepExecution)
                        .where(models.StepExecution.execution_id == execution_id)
                        .order_by(models.StepExecution.created_at, models.StepExecution.step_key)
                    )
                ).all()
            )
        return row, steps

    async def workflow(self, session: AsyncSession, workflow_id: uuid.UUID) -> Any:
        """A workflow version through ``session``, read once: every subscriber of its
        executions holds the same row instead of a copy each."""
        row = self._workflows.get(workflow_id)
        if row is not None:
            self._workflows.move_to_end(workflow_id)
            return row
        row = await session.get(models.Workflow, workflow_id)
        assert row is not None  # an execution's workflow is never deleted
        if not self._closed:
            while len(self._workflows) >= self._workflows_size:
                self._workflows.popitem(last=False)
            self._workflows[workflow_id] = row
        return row

    def held_workflows(self, workflow_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Any]:
        """Those of these workflow versions already held (ORM or plain rows, read-only)."""
        held: dict[uuid.UUID, Any] = {}
        for workflow_id in workflow_ids:
            row = self._workflows.get(workflow_id)
            if row is not None:
                self._workflows.move_to_end(workflow_id)
                held[workflow_id] = row
        return held

    def hold_workflows(self, rows: Iterable[Any]) -> None:
        """Keep workflow versions read elsewhere (a page of executions)."""
        if self._closed:
            return
        for row in rows:
            while len(self._workflows) >= self._workflows_size:
                self._workflows.popitem(last=False)
            self._workflows[row.id] = row

    async def aclose(self) -> None:
        """Cancel the reads under way, drop every row; later calls read without keeping."""
        self._closed = True
        reads = list(self._reads)
        for task in reads:
            task.cancel()
        if reads:
            await asyncio.gather(*reads, return_exceptions=True)
        self._current.clear()
        self._workflows.clear()
