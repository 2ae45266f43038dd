"""Batch loaders, created per request; each batch opens its own short session."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader

from cognitionos.db.models.workflows import StepExecution, Workflow, WorkflowExecution
from cognitionos.services.auth import Principal
from cognitionos.services.workflows import (
    executions_by_workflow,
    steps_by_execution,
    workflows_by_id,
)

__all__ = ["Loaders"]

K = TypeVar("K")
V = TypeVar("V")


def _loader(
    sessionmaker: async_sessionmaker[AsyncSession],
    batch: Callable[[AsyncSession, Sequence[K]], Awaitable[list[V]]],
) -> DataLoader[K, V]:
    async def load(keys: list[K]) -> list[V]:
        async with sessionmaker() as session:
            return await batch(session, keys)

    return DataLoader(load_fn=load)


class Loaders:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], principal: Principal | None
    ) -> None:
        self.steps: DataLoader[uuid.UUID, list[StepExecution]] = _loader(
            sessionmaker, steps_by_execution
        )
        self.workflow: DataLoader[uuid.UUID, Workflow | None] = _loader(
            sessionmaker, workflows_by_id
        )
        self.executions: DataLoader[uuid.UUID, list[WorkflowExecution]] | None = None
        if principal is not None:
            self.executions = _loader(
                sessionmaker,
                lambda session, ids: executions_by_workflow(session, ids, principal=principal),
            )
