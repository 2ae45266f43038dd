"""Reading executions, steps and events; batch loads for the dataloaders.

The lists and batch loads answer plain rows (``db/rows.py``): everything that reads them
only shows them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.workflows import (
    ExecutionStatus,
    StepExecution,
    Workflow,
    WorkflowExecution,
)
from cognitionos.db.rows import plain_rows, plain_select
from cognitionos.services.auth import Principal
from cognitionos.services.errors import Forbidden, NotFound
from cognitionos.services.pagination import Page, paginate

__all__ = [
    "executions_by_workflow",
    "get_execution",
    "get_step",
    "list_executions",
    "steps_by_execution",
    "workflows_by_id",
]


_EXECUTIONS: Table = WorkflowExecution.__table__  # type: ignore[assignment]
_WORKFLOWS: Table = Workflow.__table__  # type: ignore[assignment]
_STEPS: Table = StepExecution.__table__  # type: ignore[assignment]
# Built once: a statement object memoizes its cache key, so a batch load builds nothing.
_STEPS_OF = (
    plain_select(StepExecution)
    .where(_STEPS.c.execution_id.in_(bindparam("ids", expanding=True)))
    .order_by(_STEPS.c.created_at, _STEPS.c.step_key)
)
_WORKFLOWS_BY_ID = plain_select(Workflow).where(
    _WORKFLOWS.c.id.in_(bindparam("ids", expanding=True))
)


async def get_execution(
    session: AsyncSession, *, principal: Principal, execution_id: uuid.UUID
) -> WorkflowExecution:
    execution = await session.get(WorkflowExecution, execution_id)
    if execution is None:
        raise NotFound(f"execution {execution_id} not found")
    if execution.created_by != principal.user_id and not principal.is_admin:
        raise Forbidden("this execution belongs to another user")
    return execution


async def get_step(
    session: AsyncSession, *, principal: Principal, step_id: uuid.UUID
) -> StepExecution:
    step = await session.get(StepExecution, step_id)
    if step is None:
        raise NotFound(f"step execution {step_id} not found")
    await get_execution(session, principal=principal, execution_id=step.execution_id)
    return step


async def list_executions(
    session: AsyncSession,
    *,
    principal: Principal,
    first: int | None,
    after: str | None,
    status: ExecutionStatus | None = None,
    workflow_key: str | None = None,
) -> Page[WorkflowExecution]:
    executions, workflows = _EXECUTIONS.c, _WORKFLOWS.c
    stmt = plain_select(WorkflowExecution)
    if not principal.is_admin:
        stmt = stmt.where(executions.created_by == principal.user_id)
    if status is not None:
        stmt = stmt.where(executions.status == status)
    if workflow_key is not None:
        stmt = stmt.join(_WORKFLOWS, workflows.id == executions.workflow_id).where(
            workflows.key == workflow_key
        )
    return await paginate(session, WorkflowExecution, stmt, first=first, after=after)


async def steps_by_execution(
    session: AsyncSession, execution_ids: Sequence[uuid.UUID]
) -> list[list[StepExecution]]:
    result = await session.execute(_STEPS_OF, {"ids": list(execution_ids)})
    rows = plain_rows(result, StepExecution)
    grouped: dict[uuid.UUID, list[StepExecution]] = {i: [] for i in execution_ids}
    for row in rows:
        grouped[row.execution_id].append(row)
    return [grouped[i] for i in execution_ids]


async def workflows_by_id(
    session: AsyncSession, workflow_ids: Sequence[uuid.UUID]
) -> list[Workflow | None]:
    result = await session.execute(_WORKFLOWS_BY_ID, {"ids": list(workflow_ids)})
    rows = plain_rows(result, Workflow)
    found = {row.id: row for row in rows}
    return [found.get(i) for i in workflow_ids]


async def executions_by_workflow(
    session: AsyncSession,
    workflow_ids: Sequence[uuid.UUID],
    *,
    principal: Principal,
    per_workflow: int = 20,
) -> list[list[WorkflowExecution]]:
    """The newest executions of each workflow visible to the principal, one query."""
    rank = (
        func.row_number()
        .over(
            partition_by=WorkflowExecution.workflow_id,
            order_by=(WorkflowExecution.created_at.desc(), WorkflowExecution.id.desc()),
        )
        .label("rank")
    )
    inner: Any = select(WorkflowExecution.id, rank).where(
        WorkflowExecution.workflow_id.in_(workflow_ids)
    )
    if not principal.is_admin:
        inner = inner.where(WorkflowExecution.created_by == principal.user_id)
    ranked = inner.subquery()
    rows = (
        await session.scalars(
            select(WorkflowExecution)
            .join(ranked, ranked.c.id == WorkflowExecution.id)
            .where(ranked.c.rank <= per_workflow)
            .order_by(WorkflowExecution.created_at.desc(), WorkflowExecution.id.desc())
        )
    ).all()
    grouped: dict[uuid.UUID, list[WorkflowExecution]] = {i: [] for i in workflow_ids}
    for row in rows:
        grouped[row.workflow_id].append(row)
    return [grouped[i] for i in workflow_ids]
