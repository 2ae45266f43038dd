"""A step's state changes: claim (RUNNING with a lease, parked for approval, or refused),
heartbeat, and settle (succeeded, failed or deferred), each one unit of work.

The ``StepRunner`` (``runner.py``) drives a step through these; the user operations are
in ``engine.py``. An inline kind is settled inside its claim's transaction
(``Claim.settle``): it has no I/O, so a crash simply rolls the whole attempt back.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from opentelemetry import trace
from sqlalchemy import select, update

from cognitionos.db.models.workflows import (
    ExecutionStatus,
    StepExecution,
    StepStatus,
    WorkflowExecution,
)
from cognitionos.services.auth import acting_principal
from cognitionos.services.errors import Forbidden
from cognitionos.services.workflows._unit import Transactions, Unit
from cognitionos.services.workflows.definitions import StepSpec
from cognitionos.services.workflows.steps import StepContext, StepDeps, get_kind
from cognitionos.services.workflows.templates import TemplateFailure, render_value
from cognitionos.services.workflows.transitions import (
    Definition,
    Dispatch,
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

__all__ = [
    "Claim",
    "ClaimState",
    "ClaimedStep",
    "Deferred",
    "Failed",
    "HeartbeatResult",
    "Outcome",
    "StepLifecycle",
    "Succeeded",
]


@dataclass(frozen=True)
class Succeeded:
    output: Any
    inputs: dict[str, Any] | None = None  # the config as rendered for this attempt
    cost_usd: Decimal | None = None
    tokens: int = 0
    served_by: list[str] | None = None
    notes: dict[str, Any] | None = None  # more for STEP_SUCCEEDED (how its LLM calls went)


@dataclass(frozen=True)
class Failed:
    error: str
    retryable: bool
    inputs: dict[str, Any] | None = None


@dataclass(frozen=True)
class Deferred:
    """Not now, and not a failure: run again after ``delay``; the attempt is given back."""

    reason: str
    delay: float
    inputs: dict[str, Any] | None = None


Outcome = Succeeded | Failed | Deferred


class ClaimState(StrEnum):
    STALE = "stale"  # a duplicate or outdated dispatch: nothing was done
    REFUSED = "refused"  # its owner may not run steps now: the step failed
    PARKED = "parked"  # an approval step now waits for a decision
    RUNNING = "running"  # ours, with a lease: run it


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

    def context(self, deps: StepDeps) -> StepContext:
        """What the step's kind sees while it runs."""
        return StepContext(
            deps=deps,
            execution_id=self.execution_id,
            step_id=self.step_id,
            step_key=self.step_key,
            attempt=self.attempt,
            actor_id=self.actor_id,
            inputs=self.inputs,
            steps=self.outputs,
            agent_capability=self.spec.agent_capability,
            previous_error=self.previous_error,
        )


class HeartbeatResult:
    OK = "ok"
    CANCELLED = "cancelled"
    LOST = "lost"


def _describe_span(attributes: dict[str, str | int | bool], *, name: str | None = None) -> None:
    """Say on the step's span (``runner.py``) which step it claimed and how it went."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(attributes)
        if name is not None:
            span.update_name(name)


class Claim:
    """A dispatch taken inside its claim's transaction. ``step`` is set when ``state``
    is RUNNING; ``handed_back`` (once the claim's block is over) is a lone step its
    settling made ready, for the caller to run."""

    def __init__(self, lifecycle: StepLifecycle, unit: Unit) -> None:
        self.state = ClaimState.STALE
        self.step: ClaimedStep | None = None
        self.settled = False
        self._lifecycle = lifecycle
        self._unit = unit
        self._rows: tuple[WorkflowExecution, Definition, StepExecution] | None = None
        self._loaded: list[StepExecution] | None = None

    @property
    def handed_back(self) -> Dispatch | None:
        return self._unit.handed_back

    async def settle(self, outcome: Outcome) -> None:
        """Settle the claimed step in the claim's own transaction (inline kinds)."""
        assert self._rows is not None and not self.settled
        execution, definition, step = self._rows
        await self._lifecycle.settled(
            self._unit, execution, definition, step, outcome, loaded=self._loaded
        )
        self.settled = True


class StepLifecycle(Transactions):
    """Claim, heartbeat, settle: every transition of a running step."""

    @asynccontextmanager
    async def claim(
        self, step_id: uuid.UUID, seq: int, owner: str, *, hand_back: bool = False
    ) -> AsyncIterator[Claim]:
        """Take a dispatched step, in a transaction that lasts the block: RUNNING with a
        lease for ``owner``, parked for approval, refused, or stale (``Claim.state``)."""
        async with self.unit(hand_back=hand_back) as unit:
            claim = Claim(self, unit)
            await self._take(claim, step_id, seq, owner)
            yield claim

    async def _take(self, claim: Claim, step_id: uuid.UUID, seq: int, owner: str) -> None:
        session, effects = claim._unit.session, claim._unit.effects
        locked = await lock_for_step(session, step_id)
        if locked is None:
            return
        execution, step = locked
        claimable = step.status in (StepStatus.QUEUED, StepStatus.RETRYING)
        if not claimable or step.dispatch_seq != seq or execution.status.terminal:
            _describe_span({"cognitionos.step.outcome": "stale"})
            return
        _describe_span(
            {
                "cognitionos.execution.id": str(execution.id),
                "cognitionos.step.key": step.step_key,
                "cognitionos.step.kind": step.kind,
            },
            name=f"run_step {step.kind}",
        )
        definition = await self.definition(session, execution.workflow_id)
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
            claim.state = ClaimState.REFUSED
            failed = Failed(f"step not run: {exc.message}", retryable=False)
            await self.settled(claim._unit, execution, definition, step, failed)
            return
        if kind is not None and kind.waits_for_approval:
            claim.state = ClaimState.PARKED
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
            return
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
        claim.state = ClaimState.RUNNING
        claim.step = ClaimedStep(
            step_id=step.id,
            execution_id=execution.id,
            step_key=step.step_key,
            attempt=step.attempt,
            spec=spec,
            inputs=dict(execution.inputs),
            outputs={
                s.step_key: {"output": s.output}
                for s in loaded
                if s.step_key in needs and s.status is StepStatus.SUCCEEDED
            },
            actor_id=execution.created_by,
            previous_error=step.error,
        )
        claim._rows = (execution, definition, step)
        claim._loaded = loaded if inline else None

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
                prompt, variables, renderer=self.renderer, time_limit=spec.timeout_seconds
            )
        except TemplateFailure as exc:
            return f"{prompt} ({exc})", None
        return rendered, {**spec.config, "prompt": rendered}

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

    async def settle(
        self, step_id: uuid.UUID, owner: str, outcome: Outcome, *, hand_back: bool = False
    ) -> Dispatch | None:
        """Record how a step we hold the lease on ended (nothing when the lease was lost:
        someone else owns the step now). Returns the step handed back, if any."""
        async with self.unit(hand_back=hand_back) as unit:
            locked = await lock_for_step(unit.session, step_id)
            if locked is None:
                return None
            execution, step = locked
            if step.status is not StepStatus.RUNNING or step.lease_owner != owner:
                return None
            definition = await self.definition(unit.session, execution.workflow_id)
            await self.settled(unit, execution, definition, step, outcome)
        return unit.handed_back

    async def settled(
        self,
        unit: Unit,
        execution: WorkflowExecution,
        definition: Definition,
        step: StepExecution,
        outcome: Outcome,
        *,
        loaded: list[StepExecution] | None = None,
    ) -> None:
        """Write ``outcome`` in ``unit``. ``loaded``: the steps completing reads
        (``Definition.around``), when the caller has them already."""
        session, effects = unit.session, unit.effects
        if isinstance(outcome, Deferred):
            set_step(
                execution,
                step,
                StepStatus.RETRYING,
                attempt=max(0, step.attempt - 1),
                error=outcome.reason,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=now() + timedelta(seconds=outcome.delay),
                resolved_inputs=outcome.inputs,
            )
            requeue(step, effects, defer=outcome.delay)
            await record(
                session, effects, execution, "STEP_DEFERRED", step=step, reason=outcome.reason
            )
            return
        key = step.step_key
        if isinstance(outcome, Succeeded):
            _describe_span({"cognitionos.step.outcome": "succeeded"})
            # Read before writing: a read after a write would flush it first.
            steps = (
                loaded
                if loaded is not None
                else await steps_of(session, execution.id, definition.around(key))
            )
            step.resolved_inputs = outcome.inputs
            await succeed_step(
                session,
                effects,
                execution,
                steps,
                step,
                outcome.output,
                cost_usd=outcome.cost_usd,
                tokens=outcome.tokens,
                served_by=outcome.served_by,
                notes=outcome.notes,
            )
        else:
            trace.get_current_span().set_status(trace.StatusCode.ERROR, outcome.error[:200])
            _describe_span(
                {
                    "cognitionos.step.outcome": "failed",
                    "cognitionos.step.retryable": outcome.retryable,
                }
            )
            steps = await steps_of(session, execution.id, {key, *definition.descendants(key)})
            step.resolved_inputs = outcome.inputs
            await fail_step(
                session,
                effects,
                execution,
                definition,
                steps,
                step,
                outcome.error,
                retryable=outcome.retryable,
            )
        await finish_if_done(session, effects, execution)
