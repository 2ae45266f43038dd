"""GraphQL types for workflows, executions, steps, events and schedules."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import Info

from cognitionos.db import models
from cognitionos.schema.common import JSON, Connection
from cognitionos.services import workflows as wf
from cognitionos.services.errors import Unauthenticated

__all__ = [
    "CreateWorkflowInput",
    "Event",
    "ExecuteWorkflowInput",
    "Execution",
    "ExecutionFilter",
    "ExecutionStatus",
    "Schedule",
    "ScheduleInput",
    "StepExecution",
    "StepStatus",
    "Workflow",
    "WorkflowFilter",
]

ExecutionStatus = models.ExecutionStatus
StepStatus = models.StepStatus
ScheduleKind = models.ScheduleKind
strawberry.enum(ExecutionStatus, name="ExecutionStatus")
strawberry.enum(StepStatus, name="StepStatus")
strawberry.enum(ScheduleKind, name="ScheduleKind")


def _money(value: Any) -> float | None:
    return float(value) if value is not None else None


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@strawberry.experimental.pydantic.type(model=wf.RetryPolicy, all_fields=True)
class RetryPolicy:
    pass


@strawberry.experimental.pydantic.type(model=wf.StepSpec, all_fields=True)
class StepDefinition:
    config: JSON
    depends_on: list[str]


@strawberry.type
class Workflow:
    id: strawberry.ID
    key: str
    version: str
    name: str
    description: str | None
    tags: list[str]
    input_schema: JSON | None
    metadata: JSON
    created_at: datetime
    model: strawberry.Private[models.Workflow]

    @strawberry.field
    def steps(self) -> list[StepDefinition]:
        # Built when asked for: a page of executions names each one's workflow, rarely
        # its steps.
        return [StepDefinition.from_pydantic(wf.StepSpec.from_json(s)) for s in self.model.steps]

    @strawberry.field(description="Your newest executions of this workflow (all, for admins).")
    async def executions(self, info: Info) -> list[Execution]:
        loader = info.context.loaders.executions
        if loader is None:
            raise Unauthenticated("authentication required")
        return [Execution.from_model(e) for e in await loader.load(self.model.id)]

    @classmethod
    def from_model(cls, row: models.Workflow) -> Workflow:
        return cls(
            id=strawberry.ID(str(row.id)),
            key=row.key,
            version=row.version,
            name=row.name,
            description=row.description,
            tags=list(row.tags),
            input_schema=JSON(row.input_schema) if row.input_schema is not None else None,
            metadata=JSON(row.extra or {}),
            created_at=row.created_at,
            model=row,
        )


@strawberry.type
class StepExecution:
    id: strawberry.ID
    execution_id: strawberry.ID
    step_key: str
    kind: str
    status: StepStatus
    attempt: int
    max_attempts: int
    agent: strawberry.ID | None
    inputs: JSON | None = strawberry.field(
        description=(
            "the step's config as rendered for its latest attempt; null before it runs "
            "or when rendering failed"
        )
    )
    output: JSON | None
    error: str | None
    cost_usd: float | None
    tokens: int
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None

    @classmethod
    def from_model(cls, row: models.StepExecution) -> StepExecution:
        return cls(
            id=strawberry.ID(str(row.id)),
            execution_id=strawberry.ID(str(row.execution_id)),
            step_key=row.step_key,
            kind=row.kind,
            status=row.status,
            attempt=row.attempt,
            max_attempts=row.max_attempts,
            agent=strawberry.ID(str(row.agent_id)) if row.agent_id else None,
            inputs=JSON(row.resolved_inputs) if row.resolved_inputs is not None else None,
            output=JSON(row.output) if row.output is not None else None,
            error=row.error,
            cost_usd=_money(row.cost_usd),
            tokens=row.tokens,
            started_at=row.started_at,
            finished_at=row.finished_at,
            next_attempt_at=row.next_attempt_at if row.status is StepStatus.RETRYING else None,
        )

    @classmethod
    def from_state(cls, state: dict[str, Any], execution_id: str) -> StepExecution:
        """The step as an event recorded it (``transitions.step_state``)."""
        status = StepStatus(state["status"])
        agent = state.get("agentId")
        output = state.get("output")
        inputs = state.get("inputs")
        return cls(
            id=strawberry.ID(state["id"]),
            execution_id=strawberry.ID(execution_id),
            step_key=state["stepKey"],
            kind=state["kind"],
            status=status,
            attempt=state["attempt"],
            max_attempts=state["maxAttempts"],
            agent=strawberry.ID(agent) if agent else None,
            inputs=JSON(inputs) if inputs is not None else None,
            output=JSON(output) if output is not None else None,
            error=state.get("error"),
            cost_usd=_money(state.get("costUsd")),
            tokens=state.get("tokens") or 0,
            started_at=_when(state.get("startedAt")),
            finished_at=_when(state.get("finishedAt")),
            next_attempt_at=(
                _when(state.get("nextAttemptAt")) if status is StepStatus.RETRYING else None
            ),
        )


@strawberry.type
class Execution:
    id: strawberry.ID
    status: ExecutionStatus
    inputs: JSON
    outputs: JSON | None
    error: str | None
    cost_usd: float | None
    tokens: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    model: strawberry.Private[models.WorkflowExecution]
    # Subscriptions read in sessions of their own, never through the connection's loaders.
    load_steps: strawberry.Private[Callable[[], Awaitable[list[models.StepExecution]]] | None] = (
        None
    )
    preloaded_workflow: strawberry.Private[models.Workflow | None] = None
    # Read with the page that lists this execution (see ``executions``).
    preloaded_steps: strawberry.Private[list[models.StepExecution] | None] = None

    # These two resolvers are synchronous when the rows came with the execution, and then
    # cost no coroutine and no task each (a page of 20 made 120 tasks); otherwise they
    # return an awaitable, which graphql-core awaits like an async resolver's.
    @strawberry.field(
        description="The steps as they are now, also on an `executionUpdated` event (whose "
        "`step` is the one that changed, as of that event)."
    )
    def steps(self, info: Info) -> list[StepExecution]:
        if self.preloaded_steps is not None:
            return [StepExecution.from_model(r) for r in self.preloaded_steps]
        return self._load_steps(info)  # type: ignore[return-value]

    async def _load_steps(self, info: Info) -> list[StepExecution]:
        if self.load_steps is not None:
            rows = await self.load_steps()
        else:
            rows = await info.context.loaders.steps.load(self.model.id)
        return [StepExecution.from_model(r) for r in rows]

    @strawberry.field
    def workflow(self, info: Info) -> Workflow:
        if self.preloaded_workflow is not None:
            return Workflow.from_model(self.preloaded_workflow)
        return self._load_workflow(info)  # type: ignore[return-value]

    async def _load_workflow(self, info: Info) -> Workflow:
        return Workflow.from_model(await info.context.loaders.workflow.load(self.model.workflow_id))

    @classmethod
    def from_model(cls, row: models.WorkflowExecution) -> Execution:
        return cls(
            id=strawberry.ID(str(row.id)),
            status=row.status,
            inputs=JSON(row.inputs),
            outputs=JSON(row.outputs) if row.outputs is not None else None,
            error=row.error,
            cost_usd=_money(row.cost_usd),
            tokens=row.tokens,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            model=row,
        )

    def at(self, state: dict[str, Any]) -> Execution:
        """This execution as an event recorded it (``transitions.execution_state``)."""
        outputs = state.get("outputs")
        return dataclasses.replace(
            self,
            status=ExecutionStatus(state["status"]),
            outputs=JSON(outputs) if outputs is not None else None,
            error=state.get("error"),
            cost_usd=_money(state.get("costUsd")),
            tokens=state.get("tokens") or 0,
            started_at=_when(state.get("startedAt")),
            finished_at=_when(state.get("finishedAt")),
        )


@strawberry.type
class Event:
    position: int
    stream_id: strawberry.ID
    version: int
    type: str
    data: JSON
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.Event) -> Event:
        return cls(
            position=row.position,
            stream_id=strawberry.ID(str(row.stream_id)),
            version=row.version,
            type=row.type,
            data=JSON(row.data),
            created_at=row.created_at,
        )


@strawberry.type
class Schedule:
    id: strawberry.ID
    workflow_key: str
    workflow_version: str | None = strawberry.field(
        description="The version each fire runs; null when it follows the latest."
    )
    kind: ScheduleKind
    expression: str
    timezone: str
    inputs: JSON
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_execution_id: strawberry.ID | None
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.Schedule) -> Schedule:
        return cls(
            id=strawberry.ID(str(row.id)),
            workflow_key=row.workflow_key,
            workflow_version=row.workflow_version,
            kind=row.kind,
            expression=row.expression,
            timezone=row.timezone,
            inputs=JSON(row.inputs),
            enabled=row.enabled,
            next_run_at=row.next_run_at,
            last_run_at=row.last_run_at,
            last_execution_id=(
                strawberry.ID(str(row.last_execution_id)) if row.last_execution_id else None
            ),
            created_at=row.created_at,
        )


WorkflowConnection = Connection[Workflow]
ExecutionConnection = Connection[Execution]


@strawberry.experimental.pydantic.input(model=wf.RetryPolicy, all_fields=True)
class RetryInput:
    pass


# Written out rather than derived from StepSpec: here every optional field is nullable,
# a null meaning the default, as clients have always sent it. StepSpec validates it.
@strawberry.input
class StepInput:
    key: str
    kind: str
    name: str | None = None
    agent_capability: str | None = None
    config: JSON | None = None
    depends_on: list[str] | None = None
    retry: RetryInput | None = None
    timeout_seconds: float | None = None


@strawberry.input
class CreateWorkflowInput:
    key: str
    version: str
    name: str
    steps: list[StepInput]
    description: str | None = None
    tags: list[str] | None = None
    input_schema: JSON | None = None


@strawberry.input
class ExecuteWorkflowInput:
    workflow_key: str
    version: str | None = None
    inputs: JSON | None = None
    idempotency_key: str | None = None


@strawberry.input
class WorkflowFilter:
    tag: str | None = None
    text: str | None = None
    key: str | None = None


@strawberry.input
class ExecutionFilter:
    status: ExecutionStatus | None = None
    workflow_key: str | None = None


@strawberry.input
class ScheduleInput:
    workflow_key: str
    kind: ScheduleKind
    expression: str
    version: str | None = strawberry.field(
        default=None, description="Omitted: the latest version now, recorded on the schedule."
    )
    follow_latest: bool = strawberry.field(
        default=False,
        description="Run whatever version is latest at each fire; only for a key you own "
        "(or as an admin).",
    )
    timezone: str = "UTC"
    inputs: JSON | None = None
    enabled: bool = True


@strawberry.input
class UpdateScheduleInput:
    expression: str | None = None
    timezone: str | None = None
    inputs: JSON | None = None
    enabled: bool | None = None
