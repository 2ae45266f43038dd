"""The execution engine: start, cancel, retry and approve executions.

Each operation is one unit of work (``_unit.py``): a transaction that writes the new
state and its events together, then (after commit) publishes the events and dispatches
newly ready steps. A step's own transitions (claim, heartbeat, settle) are in
``lifecycle.py``; ``runner.py`` drives a step through them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.workflows import (
    ExecutionStatus,
    StepExecution,
    StepStatus,
    WorkflowExecution,
)
from cognitionos.services.auth import Principal
from cognitionos.services.errors import Conflict, Forbidden, NotFound
from cognitionos.services.workflows._unit import Dispatcher
from cognitionos.services.workflows.definitions import StepSpec, check_inputs, require_workflow
from cognitionos.services.workflows.lifecycle import ClaimedStep, HeartbeatResult, StepLifecycle
from cognitionos.services.workflows.transitions import (
    finish_if_done,
    lock_execution,
    now,
    queue_ready_steps,
    record,
    set_step,
    skip_dependents,
    steps_of,
)

__all__ = ["ClaimedStep", "Dispatcher", "Engine", "HeartbeatResult"]


def _visible(execution: WorkflowExecution, principal: Principal) -> None:
    if execution.created_by != principal.user_id and not principal.is_admin:
        raise Forbidden("this execution belongs to another user")


class Engine(StepLifecycle):
    """Start, cancel, retry and approve executions; the ``StepRunner`` drives each step
    through the ``StepLifecycle`` half. Every operation is one ``unit`` of work."""

    # -- user operations -----------------------------------------------------------

    async def execute(
        self,
        *,
        principal: Principal,
        key: str,
        version: str | None,
        inputs: dict[str, Any],
        idempotency_key: str | None = None,
    ) -> WorkflowExecution:
        """Create the execution, its steps and first events in one transaction."""
        async with self.unit() as unit:
            session, effects = unit.session, unit.effects
            workflow = await require_workflow(session, key=key, version=version)
            check_inputs(workflow.input_schema, inputs)
            if idempotency_key:
                existing = await self._idempotent(session, principal.user_id, idempotency_key)
                if existing is not None:
                    return existing
            execution = WorkflowExecution(
                id=uuid.uuid4(),
                workflow_id=workflow.id,
                status=ExecutionStatus.PENDING,
                inputs=inputs,
                idempotency_key=idempotency_key,
                created_by=principal.user_id,
            )
            session.add(execution)
            try:
                await session.flush()  # steps reference it: insert it first
            except IntegrityError:
                await session.rollback()
                assert idempotency_key is not None  # the only unique key it can break
                existing = await self._idempotent(session, principal.user_id, idempotency_key)
                if existing is None:
                    raise
                return existing
            specs = [StepSpec.from_json(raw) for raw in workflow.steps]
            # A microsecond apart, so steps list in definition order (created_at, step_key).
            created = now()
            steps = [
                StepExecution(
                    id=uuid.uuid4(),
                    created_at=created + timedelta(microseconds=position),
                    execution_id=execution.id,
                    step_key=spec.key,
                    kind=spec.kind,
                    depends_on=list(spec.depends_on),
                    status=StepStatus.PENDING,
                    max_attempts=spec.retry.max_attempts,
                    attempt=0,
                    dispatch_seq=0,
                    lease_losses=0,
                    tokens=0,
                )
                for position, spec in enumerate(specs)
            ]
            session.add_all(steps)
            await session.flush()
            await record(
                session,
                effects,
                execution,
                "EXECUTION_CREATED",
                actor=principal.user_id,
                workflowKey=workflow.key,
                workflowVersion=workflow.version,
            )
            await queue_ready_steps(session, effects, execution, steps)
        return execution

    async def _idempotent(
        self, session: AsyncSession, user_id: uuid.UUID, key: str
    ) -> WorkflowExecution | None:
        existing = await session.scalar(
            select(WorkflowExecution).where(
                WorkflowExecution.created_by == user_id,
                WorkflowExecution.idempotency_key == key,
            )
        )
        if existing is None:
            return None
        window = timedelta(seconds=self.settings.idempotency_window_seconds)
        if existing.created_at > now() - window:
            return existing
        existing.idempotency_key = None  # expired: the key is free for a new run
        await session.flush()
        return None

    async def cancel(self, *, principal: Principal, execution_id: uuid.UUID) -> WorkflowExecution:
        async with self.unit() as unit:
            session, effects = unit.session, unit.effects
            execution = await self._locked(session, execution_id, principal)
            if execution.status.terminal:
                raise Conflict(f"execution is already {execution.status.value}")
            steps = await steps_of(session, execution_id)
            execution.status = ExecutionStatus.CANCELLED
            execution.finished_at = now()
            for step in steps:
                if not step.status.terminal and step.status is not StepStatus.RUNNING:
                    set_step(execution, step, StepStatus.CANCELLED)
                    await record(session, effects, execution, "STEP_CANCELLED", step=step)
            await record(
                session, effects, execution, "EXECUTION_CANCELLED", actor=principal.user_id
            )
        return execution

    async def retry(self, *, principal: Principal, execution_id: uuid.UUID) -> WorkflowExecution:
        """Re-run failed, skipped and cancelled steps; succeeded outputs are kept."""
        async with self.unit() as unit:
            session, effects = unit.session, unit.effects
            execution = await self._locked(session, execution_id, principal)
            if execution.status not in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED):
                raise Conflict(
                    f"only FAILED or CANCELLED executions can be retried; this one is "
                    f"{execution.status.value}"
                )
            steps = await steps_of(session, execution_id)
            if any(s.status is StepStatus.RUNNING for s in steps):
                raise Conflict("a cancelled step is still stopping; retry in a moment")
            for step in steps:
                if step.status in (StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED):
                    set_step(
                        execution,
                        step,
                        StepStatus.PENDING,
                        attempt=0,
                        error=None,
                        output=None,
                        finished_at=None,
                        started_at=None,
                        lease_losses=0,
                        next_attempt_at=None,
                        resolved_inputs=None,
                    )
            execution.status = ExecutionStatus.RUNNING
            execution.error = None
            execution.outputs = None
            execution.finished_at = None
            await record(session, effects, execution, "EXECUTION_RETRIED", actor=principal.user_id)
            await queue_ready_steps(session, effects, execution, steps)
            await finish_if_done(session, effects, execution)
        return execution

    async def approve(
        self, *, principal: Principal, step_id: uuid.UUID, approved: bool, comment: str | None
    ) -> StepExecution:
        async with self.unit() as unit:
            session, effects = unit.session, unit.effects
            step = await session.get(StepExecution, step_id)
            if step is None:
                raise NotFound(f"step execution {step_id} not found")
            execution = await self._locked(session, step.execution_id, principal)
            steps = await steps_of(session, execution.id)
            step = next(s for s in steps if s.id == step_id)
            if step.status is not StepStatus.WAITING_APPROVAL:
                raise Conflict(f"step is {step.status.value}, not waiting for approval")
            decision = {"approved": approved, "comment": comment, "by": str(principal.user_id)}
            if approved:
                set_step(execution, step, StepStatus.SUCCEEDED, output=decision)
                await record(
                    session,
                    effects,
                    execution,
                    "STEP_APPROVED",
                    step=step,
                    actor=principal.user_id,
                    comment=comment,
                )
                execution.status = ExecutionStatus.RUNNING
                await queue_ready_steps(session, effects, execution, steps)
            else:
                reason = "rejected" + (f": {comment}" if comment else "")
                set_step(execution, step, StepStatus.FAILED, output=decision, error=reason)
                await record(
                    session,
                    effects,
                    execution,
                    "STEP_REJECTED",
                    step=step,
                    actor=principal.user_id,
                    comment=comment,
                )
                await skip_dependents(session, effects, execution, steps, step)
            await finish_if_done(session, effects, execution)
        return step

    async def _locked(
        self, session: AsyncSession, execution_id: uuid.UUID, principal: Principal
    ) -> WorkflowExecution:
        try:
            execution = await lock_execution(session, execution_id)
        except LookupError:
            raise NotFound(f"execution {execution_id} not found") from None
        _visible(execution, principal)
        return execution
