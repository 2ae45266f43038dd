"""The execution engine: start, claim, complete, fail, cancel, retry, approve.

Each operation is one transaction that writes the new state and its events together,
then (after commit) publishes the events and dispatches newly ready steps.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import trace
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.config import Settings
from cognitionos.db.models.workflows import (
    ExecutionStatus,
    StepExecution,
    StepStatus,
    Workflow,
    WorkflowExecution,
)
from cognitionos.observability import Metrics, get_logger
from cognitionos.services.auth import Principal, acting_principal
from cognitionos.services.errors import Conflict, Forbidden, NotFound
from cognitionos.services.events import publish_events
from cognitionos.services.workflows.definitions import StepSpec, check_inputs, require_workflow
from cognitionos.services.workflows.output import mark_attempts
from cognitionos.services.workflows.steps import SqlPool, StepContext, StepFailure, get_kind
from cognitionos.services.workflows.templates import (
    TemplateFailure,
    render_config,
    render_value,
)
from cognitionos.services.workflows.transitions import (
    Definition,
    Dispatch,
    Effects,
    Finished,
    definition_of,
    fail_step,
    finish_if_done,
    lock_execution,
    lock_for_step,
    now,
    queue_ready_steps,
    record,
    requeue,
    set_step,
    skip_dependents,
    steps_of,
    succeed_step,
)

if TYPE_CHECKING:
    from cognitionos.services.llm import Router
    from cognitionos.services.memory import MemoryService

__all__ = ["ClaimedStep", "Dispatcher", "Engine", "HeartbeatResult"]

log = get_logger("cognitionos.engine")
_MAX_EAGER = 8


class Dispatcher(Protocol):
    """Transport for ready steps (arq in production; anything that eventually calls
    ``run_step(step_id, seq)``)."""

    async def dispatch(self, items: Sequence[Dispatch]) -> None: ...


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

    def context(self, engine: Engine) -> StepContext:
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


def _visible(execution: WorkflowExecution, principal: Principal) -> None:
    if execution.created_by != principal.user_id and not principal.is_admin:
        raise Forbidden("this execution belongs to another user")


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        dispatcher: Dispatcher,
        metrics: Metrics | None = None,
        sql: SqlPool | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sql = sql  # where SQL steps run; only a worker has one
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.dispatcher = dispatcher
        # Set by a worker: a lone newly ready step (a chain's next link) is run here at
        # once instead of a round trip through the queue. It is already QUEUED in
        # Postgres, so if this process dies the reconciler dispatches it as usual.
        self.local_runner: Callable[[Dispatch], Coroutine[Any, Any, None]] | None = None
        self.eager_tasks: set[asyncio.Task[None]] = set()
        self.llm: Router | None = None  # set where LLM steps can run
        self.memory: MemoryService | None = None  # set where memory steps can run
        self._workflow_keys: dict[uuid.UUID, str] = {}  # metric labels, bounded

    async def apply(self, effects: Effects) -> None:
        """After commit: publish, then dispatch. A crash here is healed by the reconciler."""
        if self.metrics is not None:
            for event in effects.events:
                self.metrics.events.labels(event.type).inc()
            if effects.finished:
                await self._observe(effects.finished)
        if effects.events:
            try:
                await publish_events(self.redis, effects.events)
            except Exception:  # subscribers backfill from the event log
                log.warning("publishing events failed", exc_info=True)
            try:  # before the step runs: its tokens follow its start in the log
                await mark_attempts(self.redis, effects.events)
            except Exception:  # live output is a view; the step's result is what counts
                log.warning("marking step attempts failed", exc_info=True)
        dispatch = effects.dispatch
        if (
            self.local_runner is not None
            and len(dispatch) == 1
            and not dispatch[0].defer_seconds
            and len(self.eager_tasks) < _MAX_EAGER
        ):
            task = asyncio.create_task(self.local_runner(dispatch[0]))
            self.eager_tasks.add(task)
            task.add_done_callback(self.eager_tasks.discard)
            dispatch = []
        if dispatch:
            try:
                await self.dispatcher.dispatch(dispatch)
            except Exception:  # the reconciler re-dispatches from Postgres
                log.warning("dispatch failed; the reconciler will retry", exc_info=True)

    async def _observe(self, finished: list[Finished]) -> None:
        """Durations by workflow key (capped in ``Metrics``), kind and status."""
        assert self.metrics is not None
        keys = self._workflow_keys
        missing = {f.workflow_id for f in finished} - keys.keys()
        if missing:
            try:
                async with self.sessionmaker() as session:
                    rows = await session.execute(
                        select(Workflow.id, Workflow.key).where(Workflow.id.in_(missing))
                    )
                    if len(keys) > 1000:
                        keys.clear()
                    keys.update({id_: key for id_, key in rows})
            except Exception:  # a metric is not worth failing a transition's aftermath
                log.warning("reading workflow keys for metrics failed", exc_info=True)
        for f in finished:
            key = keys.get(f.workflow_id, "unknown")
            if f.kind is None:
                self.metrics.execution_duration.labels(key, f.status).observe(f.seconds)
            else:
                self.metrics.step_duration.labels(key, f.kind, f.status).observe(f.seconds)

    # -- user operations -----------------------------------------------------------

    async def execute(
        self,
        *,
        principal: Principal,
        key: str,
        version: str | None,
        inputs: dict[str, Any],
        idempotency_key: str | None = None,
        dispatch: bool = True,
    ) -> WorkflowExecution:
        """Create the execution, its steps and first events in one transaction."""
        effects = Effects()
        async with self.sessionmaker() as session:
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
            await session.commit()
        if not dispatch:
            effects.dispatch.clear()  # as if the process died right after commit
        await self.apply(effects)
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
        effects = Effects()
        async with self.sessionmaker() as session:
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
            await session.commit()
        await self.apply(effects)
        return execution

    async def retry(self, *, principal: Principal, execution_id: uuid.UUID) -> WorkflowExecution:
        """Re-run failed, skipped and cancelled steps; succeeded outputs are kept."""
        effects = Effects()
        async with self.sessionmaker() as session:
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
            await session.commit()
        await self.apply(effects)
        return execution

    async def approve(
        self, *, principal: Principal, step_id: uuid.UUID, approved: bool, comment: str | None
    ) -> StepExecution:
        effects = Effects()
        async with self.sessionmaker() as session:
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
            await session.commit()
        await self.apply(effects)
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

    # -- worker operations -----------------------------------------------------------

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
