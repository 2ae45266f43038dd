"""State transitions of executions and steps, each inside the caller's transaction.

Every function here runs with the execution row locked (``lock_execution``), so the
transitions of one execution are serialized and the event versions cannot race. They
record what must happen after commit in ``Effects``: events to publish and steps to
dispatch. Postgres is the truth; the dispatch is only transport.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.events import Event
from cognitionos.db.models.workflows import (
    ExecutionStatus,
    StepExecution,
    StepStatus,
    WorkflowExecution,
)
from cognitionos.observability.tracing import LINK, carrier_of_current_span
from cognitionos.services.events import append_event
from cognitionos.services.workflows import dag
from cognitionos.services.workflows.definitions import StepSpec
from cognitionos.services.workflows.ports import Notifications
from cognitionos.services.workflows.templates import referenced_steps, strings_in

__all__ = [
    "STREAM",
    "Definition",
    "Dispatch",
    "Effects",
    "Finished",
    "execution_state",
    "fail_step",
    "finish_if_done",
    "lock_execution",
    "lock_for_step",
    "now",
    "queue_ready_steps",
    "record",
    "requeue",
    "set_step",
    "skip_dependents",
    "step_state",
    "steps_of",
    "succeed_step",
]

STREAM = "execution"
_LIVE = (StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.RETRYING)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Dispatch:
    step_id: uuid.UUID
    seq: int
    defer_seconds: float | None = None
    trace: dict[str, str] | None = None  # W3C trace context the job continues (or links)

    @property
    def job_id(self) -> str:
        return f"step:{self.step_id}:{self.seq}"


@dataclass
class Effects:
    """What a transaction sets off: the owner's notices, written in it (``notices``, the
    engine's port; None writes none), and what to do once it has committed."""

    events: list[Event] = field(default_factory=list)
    dispatch: list[Dispatch] = field(default_factory=list)
    finished: list[Finished] = field(default_factory=list)  # for the duration metrics
    notices: Notifications | None = None


@dataclass(frozen=True)
class Finished:
    """An execution (``kind`` None) or a step attempt that ended, and how long it took."""

    workflow_id: uuid.UUID
    kind: str | None
    status: str
    seconds: float


@dataclass(frozen=True)
class Definition:
    """A workflow version's steps and graph; immutable, so cached per process."""

    specs: dict[str, StepSpec]
    graph: dict[str, list[str]]
    children: dict[str, list[str]]
    # The steps whose outputs a step reads: its dependencies and every step its config
    # names (``steps.k`` / ``steps['k']``), never the whole upstream of a long chain.
    needs: dict[str, set[str]]

    @classmethod
    def build(cls, raw_steps: list[dict[str, Any]]) -> Definition:
        specs = {raw["key"]: StepSpec.from_json(raw) for raw in raw_steps}
        graph = {key: list(spec.depends_on) for key, spec in specs.items()}
        children: dict[str, list[str]] = {key: [] for key in specs}
        for key, deps in graph.items():
            for dep in deps:
                children[dep].append(key)
        needs = {
            key: set(spec.depends_on)
            | {
                ref
                for _, text in strings_in(spec.config, "config")
                for ref in referenced_steps(text)
                if ref in specs
            }
            for key, spec in specs.items()
        }
        return cls(specs=specs, graph=graph, children=children, needs=needs)

    def descendants(self, key: str) -> set[str]:
        return dag.ancestors(self.children, key)

    def around(self, key: str) -> set[str]:
        """The step, its children, and their other dependencies: what completing it reads."""
        found = {key}
        for child in self.children[key]:
            found.add(child)
            found.update(self.graph[child])
        return found


async def lock_for_step(
    session: AsyncSession, step_id: uuid.UUID
) -> tuple[WorkflowExecution, StepExecution] | None:
    """Lock the execution that owns a step and read both, in one round trip."""
    stmt = (
        select(WorkflowExecution, StepExecution)
        .join(StepExecution, StepExecution.execution_id == WorkflowExecution.id)
        .where(StepExecution.id == step_id)
        .with_for_update(of=WorkflowExecution)
        .execution_options(populate_existing=True)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row is not None else None


async def lock_execution(session: AsyncSession, execution_id: uuid.UUID) -> WorkflowExecution:
    execution = await session.scalar(
        select(WorkflowExecution)
        .where(WorkflowExecution.id == execution_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if execution is None:
        raise LookupError(f"execution {execution_id} not found")
    return execution


async def steps_of(
    session: AsyncSession, execution_id: uuid.UUID, keys: set[str] | None = None
) -> list[StepExecution]:
    """The execution's steps (only ``keys`` when given), read after the execution lock."""
    stmt = (
        select(StepExecution)
        .where(StepExecution.execution_id == execution_id)
        .order_by(StepExecution.created_at, StepExecution.step_key)
        .execution_options(populate_existing=True)
    )
    if keys is not None:
        stmt = stmt.where(StepExecution.step_key.in_(keys))
    return list((await session.scalars(stmt)).all())


async def record(
    session: AsyncSession,
    effects: Effects,
    execution: WorkflowExecution,
    type: str,
    *,
    step: StepExecution | None = None,
    actor: uuid.UUID | None = None,
    **data: Any,
) -> None:
    """Append an event carrying the state as it is now: the execution's (``execution``)
    and, for a step event, the step's (``step``), so a replay shows each event as it
    happened rather than as things are when it is read."""
    payload: dict[str, Any] = {
        "executionStatus": execution.status.value,
        "execution": execution_state(execution),
    }
    if step is not None:
        payload.update(
            stepId=str(step.id),
            stepKey=step.step_key,
            status=step.status.value,
            attempt=step.attempt,
            step=step_state(step),
        )
    payload.update({k: v for k, v in data.items() if v is not None})
    _time(effects, execution, step, type)
    execution.event_version += 1
    await append_event(
        session,
        stream_type=STREAM,
        stream_id=execution.id,
        type=type,
        data=payload,
        actor=actor,
        outbox=effects.events,
        version=execution.event_version,
    )
    if type in _NOTIFYING and effects.notices is not None:
        # In the transition's own transaction, so a crash cannot lose the owner's notice.
        # Through the engine's port: workflows never import notifications, nor they
        # workflows (tests/test_layering.py).
        await effects.notices.notify_owner(session, execution, type)


_NOTIFYING = {"EXECUTION_SUCCEEDED", "EXECUTION_FAILED", "EXECUTION_WAITING"}
# Events that end an attempt or a run: their duration is observed (status as labelled).
_STEP_ENDS = {
    "STEP_SUCCEEDED": "SUCCEEDED",
    "STEP_FAILED": "FAILED",
    "STEP_RETRYING": "RETRYING",
    "STEP_CANCELLED": "CANCELLED",
    "STEP_REJECTED": "FAILED",
    "STEP_APPROVED": "SUCCEEDED",
}
_EXECUTION_ENDS = {
    "EXECUTION_SUCCEEDED": "SUCCEEDED",
    "EXECUTION_FAILED": "FAILED",
    "EXECUTION_CANCELLED": "CANCELLED",
}


def _time(
    effects: Effects, execution: WorkflowExecution, step: StepExecution | None, type: str
) -> None:
    if step is not None and type in _STEP_ENDS and step.started_at is not None:
        seconds = (now() - step.started_at).total_seconds()
        effects.finished.append(
            Finished(execution.workflow_id, step.kind, _STEP_ENDS[type], max(0.0, seconds))
        )
    elif step is None and type in _EXECUTION_ENDS:
        began = execution.started_at or execution.created_at
        if began is not None:
            seconds = (now() - began).total_seconds()
            effects.finished.append(
                Finished(execution.workflow_id, None, _EXECUTION_ENDS[type], max(0.0, seconds))
            )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _money(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


def execution_state(execution: WorkflowExecution) -> dict[str, Any]:
    """The execution's changing fields, as stored in each of its events."""
    return {
        "status": execution.status.value,
        "outputs": execution.outputs,
        "error": execution.error,
        "costUsd": _money(execution.cost_usd),
        "tokens": execution.tokens,
        "startedAt": _iso(execution.started_at),
        "finishedAt": _iso(execution.finished_at),
    }


def step_state(step: StepExecution) -> dict[str, Any]:
    """A step as it is now, as stored in each of its events."""
    return {
        "id": str(step.id),
        "stepKey": step.step_key,
        "kind": step.kind,
        "status": step.status.value,
        "attempt": step.attempt,
        "maxAttempts": step.max_attempts,
        "agentId": str(step.agent_id) if step.agent_id is not None else None,
        "inputs": step.resolved_inputs,
        "output": step.output,
        "error": step.error,
        "costUsd": _money(step.cost_usd),
        "tokens": step.tokens,
        "startedAt": _iso(step.started_at),
        "finishedAt": _iso(step.finished_at),
        "nextAttemptAt": _iso(step.next_attempt_at),
    }


def set_step(
    execution: WorkflowExecution, step: StepExecution, status: StepStatus, **values: Any
) -> None:
    """The one place a step's status changes; keeps the execution's live-step count."""
    execution.active_steps += (status in _LIVE) - (step.status in _LIVE)
    step.status = status
    for name, value in values.items():
        setattr(step, name, value)
    if status.terminal or status is StepStatus.WAITING_APPROVAL:
        step.lease_owner = None
        step.lease_expires_at = None
    if status.terminal:
        step.finished_at = now()


def _queue(
    step: StepExecution, effects: Effects, *, defer: float | None = None, again: bool = False
) -> None:
    step.dispatch_seq += 1
    step.dispatched_at = now() + timedelta(seconds=defer or 0)
    step.trace_context = _trace_context(step, again=again)
    effects.dispatch.append(Dispatch(step.id, step.dispatch_seq, defer, step.trace_context))


def _trace_context(step: StepExecution, *, again: bool) -> dict[str, str] | None:
    """The trace the job continues: the current span's (the request, or the step run
    that made this one ready). A step run ``again`` (a retry, a lost lease, a wait for
    an agent) starts a trace linked to the previous attempt's, or to its last dispatch
    when there is no current span (the reconciler)."""
    current = carrier_of_current_span()
    if not again:
        return current
    previous = current or {k: v for k, v in (step.trace_context or {}).items() if k != LINK}
    return {**previous, LINK: "1"} if previous else None


async def queue_ready_steps(
    session: AsyncSession,
    effects: Effects,
    execution: WorkflowExecution,
    steps: list[StepExecution],
) -> None:
    """Queue every PENDING step whose dependencies all succeeded."""
    done = {s.step_key for s in steps if s.status is StepStatus.SUCCEEDED}
    for step in steps:
        if step.status is StepStatus.PENDING and all(d in done for d in step.depends_on):
            set_step(execution, step, StepStatus.QUEUED)
            _queue(step, effects)
            await record(session, effects, execution, "STEP_QUEUED", step=step)


def requeue(step: StepExecution, effects: Effects, *, defer: float | None = None) -> None:
    """Dispatch a step that ran (or was given back) once more."""
    _queue(step, effects, defer=defer, again=True)


async def skip_dependents(
    session: AsyncSession,
    effects: Effects,
    execution: WorkflowExecution,
    steps: list[StepExecution],
    failed: StepExecution,
) -> None:
    """Skip the PENDING descendants of ``failed`` among ``steps``."""
    children: dict[str, list[str]] = {s.step_key: [] for s in steps}
    for s in steps:
        for dep in s.depends_on:
            children.setdefault(dep, []).append(s.step_key)
    below = dag.ancestors(children, failed.step_key)
    for step in steps:
        if step.status is StepStatus.PENDING and step.step_key in below:
            set_step(
                execution, step, StepStatus.SKIPPED, error=f"dependency {failed.step_key!r} failed"
            )
            await record(session, effects, execution, "STEP_SKIPPED", step=step)


def _rollup(execution: WorkflowExecution, steps: list[StepExecution]) -> None:
    costs = [s.cost_usd for s in steps if s.cost_usd is not None]
    execution.cost_usd = sum(costs, Decimal(0)) if costs else None
    execution.tokens = sum(s.tokens for s in steps)


async def finish_if_done(
    session: AsyncSession, effects: Effects, execution: WorkflowExecution
) -> None:
    """Finish the execution when no step can move any more; or mark it WAITING.

    A count per status decides; all steps are read only when the execution ends."""
    if execution.status.terminal:
        return
    if execution.active_steps > 0:
        if execution.status is ExecutionStatus.WAITING:
            execution.status = ExecutionStatus.RUNNING
        return
    counts = dict(
        (
            await session.execute(
                select(StepExecution.status, func.count())
                .where(StepExecution.execution_id == execution.id)
                .group_by(StepExecution.status)
            )
        ).all()
    )
    if any(counts.get(status) for status in _LIVE):
        if execution.status is ExecutionStatus.WAITING:
            execution.status = ExecutionStatus.RUNNING
        return
    steps = await steps_of(session, execution.id)
    _rollup(execution, steps)
    pending = [s for s in steps if s.status is StepStatus.PENDING]
    waiting = [s for s in steps if s.status is StepStatus.WAITING_APPROVAL]
    if waiting:
        if execution.status is not ExecutionStatus.WAITING:
            execution.status = ExecutionStatus.WAITING
            await record(
                session,
                effects,
                execution,
                "EXECUTION_WAITING",
                steps=[s.step_key for s in waiting],
            )
        return
    if pending:  # blocked behind steps that cannot succeed: nothing else will run them
        for step in pending:
            set_step(execution, step, StepStatus.SKIPPED, error="a dependency did not succeed")
            await record(session, effects, execution, "STEP_SKIPPED", step=step)
    failed = sorted(
        (s for s in steps if s.status is StepStatus.FAILED),
        key=lambda s: s.finished_at or now(),
    )
    execution.finished_at = now()
    if failed:
        first = failed[0]
        execution.status = ExecutionStatus.FAILED
        execution.error = f"step {first.step_key!r} failed: {first.error}"
        await record(session, effects, execution, "EXECUTION_FAILED", error=execution.error)
        return
    graph = {s.step_key: list(s.depends_on) for s in steps}
    by_key = {s.step_key: s for s in steps}
    execution.status = ExecutionStatus.SUCCEEDED
    execution.outputs = {key: by_key[key].output for key in dag.sinks(graph)}
    execution.error = None
    await record(session, effects, execution, "EXECUTION_SUCCEEDED")


async def succeed_step(
    session: AsyncSession,
    effects: Effects,
    execution: WorkflowExecution,
    steps: list[StepExecution],
    step: StepExecution,
    output: Any,
    *,
    cost_usd: Decimal | None = None,
    tokens: int = 0,
    served_by: list[str] | None = None,
    notes: dict[str, Any] | None = None,
) -> None:
    step.cost_usd, step.tokens = cost_usd, tokens
    execution.tokens = (execution.tokens or 0) + tokens
    if cost_usd is not None:
        execution.cost_usd = (execution.cost_usd or Decimal(0)) + cost_usd
    if execution.status is ExecutionStatus.CANCELLED:
        set_step(execution, step, StepStatus.CANCELLED)
        await record(session, effects, execution, "STEP_CANCELLED", step=step)
        return
    set_step(execution, step, StepStatus.SUCCEEDED, output=output, error=None)
    await record(
        session,
        effects,
        execution,
        "STEP_SUCCEEDED",
        step=step,
        servedBy=served_by,
        **(notes or {}),
    )
    await queue_ready_steps(session, effects, execution, steps)


async def fail_step(
    session: AsyncSession,
    effects: Effects,
    execution: WorkflowExecution,
    definition: Definition,
    steps: list[StepExecution],
    step: StepExecution,
    error: str,
    *,
    retryable: bool,
) -> None:
    """Retry with backoff while attempts remain; else fail and skip what depends on it."""
    error = error[:4000]
    if execution.status is ExecutionStatus.CANCELLED:
        set_step(execution, step, StepStatus.CANCELLED, error=error)
        await record(session, effects, execution, "STEP_CANCELLED", step=step)
    elif retryable and step.attempt < step.max_attempts:
        delay = definition.specs[step.step_key].retry.delay(step.attempt)
        set_step(
            execution,
            step,
            StepStatus.RETRYING,
            error=error,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=now() + timedelta(seconds=delay),
        )
        requeue(step, effects, defer=delay)
        await record(
            session,
            effects,
            execution,
            "STEP_RETRYING",
            step=step,
            error=error,
            retryInSeconds=round(delay, 3),
        )
    else:
        set_step(execution, step, StepStatus.FAILED, error=error)
        await record(session, effects, execution, "STEP_FAILED", step=step, error=error)
        await skip_dependents(session, effects, execution, steps, step)
