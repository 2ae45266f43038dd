"""A step's side of the engine: a worker claims it, heartbeats its lease and reports how
it ended (complete, defer, fail); inline kinds and approvals are settled at claim time.

``StepLifecycle`` is the part of ``Engine`` that workers call; the user operations and the
after-commit ``apply`` are in ``engine.py``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.db.models.workflows import (
    ExecutionStatus,
    StepExecution,
    StepStatus,
    WorkflowExecution,
)
from cognitionos.observability import Metrics
from cognitionos.services.auth import acting_principal
from cognitionos.services.errors import Forbidden
from cognitionos.services.workflows.definitions import StepSpec
from cognitionos.services.workflows.steps import SqlPool, StepContext, StepFailure, get_kind
from cognitionos.services.workflows.templates import (
    TemplateFailure,
    render_config,
    render_value,
)
from cognitionos.services.workflows.transitions import (
    Definition,
    Effects,
    definition_of,
    fail_step,
    finish_if_done,
    lock_for_step,
    now,
    record,
    requeue,
    set_step,
    steps_of,
    succeed_step,
)

if TYPE_CHECKING:
    from cognitionos.services.llm import Router
    from cognitionos.services.memory import MemoryService

__all__ = ["ClaimedStep", "HeartbeatResult", "StepLifecycle"]


@dataclass(frozen=True)
class ClaimedStep:
    step_id: uuid.UUID
    execution_id: uuid.UUID
    step_key: str
    attempt: int
    spec: StepSpec
    inputs: dict[str, Any]
    outputs: dict[str, dict[str, Any]]
    actor_id: uuid.UUID | None
    previous_error: str | None = None

    def context(self, engine: StepLifecycle) -> StepContext:
        """What the step's kind sees while it runs."""
        return StepContext(
            settings=engine.settings,
            sessionmaker=engine.sessionmaker,
            execution_id=self.execution_id,
            step_id=self.step_id,
            step_key=self.step_key,
            attempt=self.attempt,
            actor_id=self.actor_id,
            inputs=self.inputs,
            steps=self.outputs,
            agent_capability=self.spec.agent_capability,
            previous_error=self.previous_error,
            llm=engine.llm,
            memory=engine.memory,
            redis=engine.redis,
            sql=engine.sql,
        )


def _describe_span(attributes: dict[str, str | int | bool], *, name: str | None = None) -> None:
    """Say on the job's span (``jobs/steps.py``) which step it claimed."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(attributes)
        if name is not None:
            span.update_name(name)


class HeartbeatResult:
    OK = "ok"
    CANCELLED = "cancelled"
    LOST = "lost"


class StepLifecycle:
    """Claim, heartbeat, complete, defer, fail: every transition of a running step."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    metrics: Metrics | None
    sql: SqlPool | None
    llm: Router | None
    memory: MemoryService | None

    async def apply(self, effects: Effects) -> None:
        raise NotImplementedError  # Engine.apply: publish and dispatch after commit

    async def claim(self, step_id: uuid.UUID, seq: int, owner: str) -> ClaimedStep | None:
        """Take a dispatched step: RUNNING with a lease, or parked for approval. An inline
        kind runs right here, in the same transaction (None is returned: nothing to run)."""
        effects = Effects()
        async with self.sessionmaker() as session:
            locked = await lock_for_step(session, step_id)
            if locked is None:
                return None
            execution, step = locked
            claimable = step.status in (StepStatus.QUEUED, StepStatus.RETRYING)
            if not claimable or step.dispatch_seq != seq or execution.status.terminal:
                _describe_span({"cognitionos.step.outcome": "stale"})
                return None  # a stale or duplicate dispatch
            _describe_span(
                {
                    "cognitionos.execution.id": str(execution.id),
                    "cognitionos.step.key": step.step_key,
                    "cognitionos.step.kind": step.kind,
                },
                name=f"run_step {step.kind}",
            )
            definition = await definition_of(session, execution.workflow_id)
            spec = definition.specs[step.step_key]
            kind = get_kind(step.kind)
            if self.metrics is not None and step.dispatched_at is not None:
                waited = (now() - step.dispatched_at).total_seconds()
                self.metrics.dispatch_latency.observe(max(0.0, waited))
            inline = kind is not None and kind.inline
            # Read everything first: no write is flushed before the commit.
            needs = definition.needs[step.step_key]
            # An inline step completes in this transaction: read what that needs, too.
            keys = needs | definition.around(step.step_key) if inline else needs
            loaded = await steps_of(session, execution.id, keys) if keys else []
            if execution.status is ExecutionStatus.PENDING:
                execution.status = ExecutionStatus.RUNNING
                execution.started_at = now()
                await record(session, effects, execution, "EXECUTION_STARTED")
            try:  # steps run as their owner as they are now: suspended or demoted, no run
                await acting_principal(session, execution.created_by)
            except Forbidden as exc:
                below = {step.step_key, *definition.descendants(step.step_key)}
                await fail_step(
                    session,
                    effects,
                    execution,
                    definition,
                    await steps_of(session, execution.id, below),
                    step,
                    f"step not run: {exc.message}",
                    retryable=False,
                )
                await finish_if_done(session, effects, execution)
                await session.commit()
                await self.apply(effects)
                return None
            if kind is not None and kind.waits_for_approval:
                prompt, rendered = await self._approval_prompt(spec, execution, loaded, needs)
                set_step(
                    execution,
                    step,
                    StepStatus.WAITING_APPROVAL,
                    started_at=now(),
                    resolved_inputs=rendered,
                )
                await record(
                    session, effects, execution, "STEP_WAITING_APPROVAL", step=step, prompt=prompt
                )
                await finish_if_done(session, effects, execution)
                await session.commit()
                await self.apply(effects)
                return None
            lease = timedelta(seconds=self.settings.step_lease_seconds)
            set_step(
                execution,
                step,
                StepStatus.RUNNING,
                attempt=step.attempt + 1,
                lease_owner=owner,
                lease_expires_at=now() + lease,
                started_at=now(),
                next_attempt_at=None,
                resolved_inputs=None,  # this attempt's, once rendered
            )
            await record(session, effects, execution, "STEP_STARTED", step=step)
            _describe_span({"cognitionos.step.attempt": step.attempt})
            outputs = {
                s.step_key: {"output": s.output}
                for s in loaded
                if s.step_key in needs and s.status is StepStatus.SUCCEEDED
            }
            claimed = ClaimedStep(
                step_id=step.id,
                execution_id=execution.id,
                step_key=step.step_key,
                attempt=step.attempt,
                spec=spec,
                inputs=dict(execution.inputs),
                outputs=outputs,
                actor_id=execution.created_by,
                previous_error=step.error,
            )
            if inline:
                await self._run_inline(
                    session, effects, execution, step, definition, claimed, loaded
                )
            await session.commit()
        await self.apply(effects)
        return None if inline else claimed

    async def _approval_prompt(
        self,
        spec: StepSpec,
        execution: WorkflowExecution,
        loaded: list[StepExecution],
        needs: set[str],
    ) -> tuple[Any, dict[str, Any] | None]:
        """The prompt an approver reads, rendered over the run's inputs and outputs, and
        the step's config with it rendered (None when rendering failed)."""
        prompt = spec.config.get("prompt")
        if not isinstance(prompt, str):
            return prompt, dict(spec.config)
        variables = {
            "inputs": dict(execution.inputs),
            "steps": {
                s.step_key: {"output": s.output}
                for s in loaded
                if s.step_key in needs and s.status is StepStatus.SUCCEEDED
            },
        }
        try:
            rendered = await render_value(
                prompt, variables, settings=self.settings, time_limit=spec.timeout_seconds
            )
        except TemplateFailure as exc:
            return f"{prompt} ({exc})", None
        return rendered, {**spec.config, "prompt": rendered}

    async def _run_inline(
        self,
        session: AsyncSession,
        effects: Effects,
        execution: WorkflowExecution,
        step: StepExecution,
        definition: Definition,
        claimed: ClaimedStep,
        steps: list[StepExecution],
    ) -> None:
        kind = get_kind(step.kind)
        assert kind is not None
        ctx = claimed.context(self)
        try:
            config = await render_config(
                claimed.spec.config,
                kind.templated,
                ctx.variables,
                settings=self.settings,
                time_limit=claimed.spec.timeout_seconds,
            )
            step.resolved_inputs = config
            output = await asyncio.wait_for(kind.run(ctx, config), claimed.spec.timeout_seconds)
            json.dumps(output)
        except (TemplateFailure, StepFailure, TypeError, ValueError) as exc:
            retryable = isinstance(exc, StepFailure) and exc.retryable
            error = f"output is not JSON: {exc}" if isinstance(exc, TypeError) else str(exc)
            below = {step.step_key, *definition.descendants(step.step_key)}
            steps = await steps_of(session, execution.id, below)
            await fail_step(
                session, effects, execution, definition, steps, step, error, retryable=retryable
            )
        else:
            await succeed_step(session, effects, execution, steps, step, output)
        await finish_if_done(session, effects, execution)

    async def heartbeat(self, step_id: uuid.UUID, owner: str) -> str:
        """Extend the lease; say whether the step was cancelled or taken over."""
        lease = timedelta(seconds=self.settings.step_lease_seconds)
        async with self.sessionmaker() as session:
            row = (
                await session.execute(
                    update(StepExecution)
                    .where(
                        StepExecution.id == step_id,
                        StepExecution.lease_owner == owner,
                        StepExecution.status == StepStatus.RUNNING,
                    )
                    .values(lease_expires_at=now() + lease)
                    .returning(StepExecution.execution_id)
                )
            ).first()
            if row is None:
                await session.commit()
                return HeartbeatResult.LOST
            status = await session.scalar(
                select(WorkflowExecution.status).where(WorkflowExecution.id == row[0])
            )
            await session.commit()
        return (
            HeartbeatResult.CANCELLED if status is ExecutionStatus.CANCELLED else HeartbeatResult.OK
        )

    async def _owned(
        self, session: AsyncSession, step_id: uuid.UUID, owner: str, *, reach: str
    ) -> tuple[WorkflowExecution, Definition, list[StepExecution], StepExecution] | None:
        """Lock and load a step we hold the lease on, with the steps a transition reads:
        ``reach`` is "around" (children and their dependencies) or "below" (descendants)."""
        locked = await lock_for_step(session, step_id)
        if locked is None:
            return None
        execution, step = locked
        if step.status is not StepStatus.RUNNING or step.lease_owner != owner:
            return None  # the lease was lost: someone else owns the step now
        definition = await definition_of(session, execution.workflow_id)
        keys = (
            definition.around(step.step_key)
            if reach == "around"
            else {step.step_key, *definition.descendants(step.step_key)}
        )
        steps = await steps_of(session, execution.id, keys)
        step = next(s for s in steps if s.id == step_id)
        return execution, definition, steps, step

    async def complete(
        self,
        step_id: uuid.UUID,
        owner: str,
        output: Any,
        *,
        cost_usd: Decimal | None = None,
        tokens: int = 0,
        served_by: list[str] | None = None,
        notes: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
    ) -> bool:
        """``notes``: more for the STEP_SUCCEEDED event (e.g. how its LLM calls went);
        ``inputs``: the config as rendered for this attempt."""
        _describe_span({"cognitionos.step.outcome": "succeeded"})
        effects = Effects()
        async with self.sessionmaker() as session:
            owned = await self._owned(session, step_id, owner, reach="around")
            if owned is None:
                return False
            execution, _, steps, step = owned
            step.resolved_inputs = inputs
            await succeed_step(
                session,
                effects,
                execution,
                steps,
                step,
                output,
                cost_usd=cost_usd,
                tokens=tokens,
                served_by=served_by,
                notes=notes,
            )
            await finish_if_done(session, effects, execution)
            await session.commit()
        await self.apply(effects)
        return True

    async def defer(
        self,
        step_id: uuid.UUID,
        owner: str,
        reason: str,
        *,
        delay: float,
        inputs: dict[str, Any] | None = None,
    ) -> bool:
        """Give a running step back to run again after ``delay``; the attempt is not used."""
        effects = Effects()
        async with self.sessionmaker() as session:
            owned = await self._owned(session, step_id, owner, reach="around")
            if owned is None:
                return False
            execution, _, _, step = owned
            set_step(
                execution,
                step,
                StepStatus.RETRYING,
                attempt=max(0, step.attempt - 1),
                error=reason,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=now() + timedelta(seconds=delay),
                resolved_inputs=inputs,
            )
            requeue(step, effects, defer=delay)
            await record(session, effects, execution, "STEP_DEFERRED", step=step, reason=reason)
            await session.commit()
        await self.apply(effects)
        return True

    async def fail(
        self,
        step_id: uuid.UUID,
        owner: str,
        error: str,
        *,
        retryable: bool,
        inputs: dict[str, Any] | None = None,
    ) -> bool:
        span = trace.get_current_span()
        span.set_status(trace.StatusCode.ERROR, error[:200])
        _describe_span(
            {"cognitionos.step.outcome": "failed", "cognitionos.step.retryable": retryable}
        )
        effects = Effects()
        async with self.sessionmaker() as session:
            owned = await self._owned(session, step_id, owner, reach="below")
            if owned is None:
                return False
            execution, definition, steps, step = owned
            step.resolved_inputs = inputs
            await fail_step(
                session, effects, execution, definition, steps, step, error, retryable=retryable
            )
            await finish_if_done(session, effects, execution)
            await session.commit()
        await self.apply(effects)
        return True
