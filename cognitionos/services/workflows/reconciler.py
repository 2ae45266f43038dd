"""The reconciler: heals what crashes leave behind, from Postgres alone.

* A RUNNING step whose lease expired (its worker died): queued again, at once.
* A QUEUED or due RETRYING step that nobody started (the dispatch was lost: the web
  process died after commit, Redis was flushed or restarted): dispatched again.
* An agent whose load a dead worker never gave back: recounted from its running steps.

Every worker runs it; the transitions are idempotent and row-locked, so two
reconcilers never double-run a step (a stale dispatch fails its claim).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import JSONB

from cognitionos.db.models.workflows import StepExecution, StepStatus
from cognitionos.services.workflows.engine import Engine
from cognitionos.services.workflows.ports import Agents
from cognitionos.services.workflows.transitions import (
    Dispatch,
    finish_if_done,
    lock_execution,
    now,
    record,
    requeue,
    set_step,
    skip_dependents,
    steps_of,
)

__all__ = ["reconcile"]

_BATCH = 200
_LOST = text(
    """
    UPDATE step_executions SET dispatched_at = now()
    WHERE id IN (
        SELECT id FROM step_executions
        WHERE status IN ('QUEUED', 'RETRYING')
          AND dispatched_at < now() - make_interval(secs => :grace)
        ORDER BY dispatched_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED)
    RETURNING id, dispatch_seq, trace_context
    """
).columns(trace_context=JSONB)


async def _expired_lease(engine: Engine, step_id: uuid.UUID, execution_id: uuid.UUID) -> bool:
    async with engine.unit() as unit:
        session, effects = unit.session, unit.effects
        execution = await lock_execution(session, execution_id)
        steps = await steps_of(session, execution_id)
        step = next(s for s in steps if s.id == step_id)
        expired = step.lease_expires_at is not None and step.lease_expires_at < now()
        if step.status is not StepStatus.RUNNING or not expired:
            return False
        lost = step.lease_owner
        if execution.status.terminal:
            set_step(execution, step, StepStatus.CANCELLED, error=f"worker {lost} was lost")
            await record(session, effects, execution, "STEP_CANCELLED", step=step)
        elif step.lease_losses + 1 > engine.settings.max_lease_losses:
            error = f"the worker running this step was lost {step.lease_losses + 1} times"
            set_step(
                execution, step, StepStatus.FAILED, error=error, lease_losses=step.lease_losses + 1
            )
            await record(session, effects, execution, "STEP_FAILED", step=step, error=error)
            await skip_dependents(session, effects, execution, steps, step)
        else:
            # A crash is not the step's failure: it does not use up an attempt.
            set_step(
                execution,
                step,
                StepStatus.QUEUED,
                attempt=max(0, step.attempt - 1),
                lease_owner=None,
                lease_expires_at=None,
                lease_losses=step.lease_losses + 1,
            )
            requeue(step, effects)
            await record(
                session, effects, execution, "STEP_LEASE_EXPIRED", step=step, lostWorker=lost
            )
            if engine.metrics is not None:
                engine.metrics.reconciler_redispatches.labels("lease_expired").inc()
        await finish_if_done(session, effects, execution)
    return True


async def reconcile(engine: Engine, agents: Agents) -> int:
    """One pass; returns how many steps it moved or re-dispatched, and agents healed."""
    moved = 0
    async with engine.sessionmaker() as session:
        expired = (
            await session.execute(
                select(StepExecution.id, StepExecution.execution_id)
                .where(
                    StepExecution.status == StepStatus.RUNNING,
                    StepExecution.lease_expires_at < now(),
                )
                .limit(_BATCH)
            )
        ).all()
    for step_id, execution_id in expired:
        moved += await _expired_lease(engine, step_id, execution_id)

    grace = engine.settings.dispatch_grace_seconds
    async with engine.sessionmaker() as session:
        lost = (await session.execute(_LOST, {"grace": grace, "batch": _BATCH})).all()
        await session.commit()
    if lost:
        if engine.metrics is not None:
            engine.metrics.reconciler_redispatches.labels("lost").inc(len(lost))
        # Same seq: if the job still sits in the queue, the enqueue is a no-op. Same
        # trace context: the job continues the trace the lost one would have.
        await engine.dispatcher.dispatch(
            [Dispatch(step_id, seq, trace=trace) for step_id, seq, trace in lost]
        )
    settings = engine.settings
    healed = await agents.heal_loads(
        stale_after=2 * max(settings.step_lease_seconds, settings.llm_timeout_seconds)
    )
    return moved + len(lost) + healed
