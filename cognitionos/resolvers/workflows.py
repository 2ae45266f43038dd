"""Workflow, execution and schedule resolvers: authorize, call the service, map."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry
from strawberry import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, Selection

from cognitionos.context import Context
from cognitionos.db.models import WorkflowExecution as WorkflowExecutionRow
from cognitionos.schema.common import connection_from_page, input_data, json_object, parse_id
from cognitionos.schema.permissions import IsMember, IsViewer
from cognitionos.schema.workflows import (
    CreateWorkflowInput,
    Event,
    ExecuteWorkflowInput,
    Execution,
    ExecutionConnection,
    ExecutionFilter,
    Schedule,
    ScheduleInput,
    StepExecution,
    UpdateScheduleInput,
    Workflow,
    WorkflowConnection,
    WorkflowFilter,
)
from cognitionos.services import workflows as wf
from cognitionos.services.events import list_events

__all__ = ["WorkflowMutation", "WorkflowQuery"]


def _selects(selections: Sequence[Selection], path: tuple[str, ...]) -> bool:
    """Whether the field at ``path`` (names below the current field) is selected, also
    through fragments."""
    name, *rest = path
    for selection in selections:
        if isinstance(selection, FragmentSpread | InlineFragment):
            if _selects(selection.selections, path):
                return True
        elif selection.name == name and (not rest or _selects(selection.selections, tuple(rest))):
            return True
    return False


@strawberry.type
class WorkflowQuery:
    @strawberry.field(
        permission_classes=[IsViewer], description="A workflow; the latest version by default."
    )
    async def workflow(
        self, info: Info[Context, None], key: str, version: str | None = None
    ) -> Workflow | None:
        async with info.context.session() as session:
            row = await wf.get_workflow(session, key=key, version=version)
        return Workflow.from_model(row) if row else None

    @strawberry.field(permission_classes=[IsViewer])
    async def workflows(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        filter: WorkflowFilter | None = None,
    ) -> WorkflowConnection:
        f = filter or WorkflowFilter()
        async with info.context.session() as session:
            page = await wf.list_workflows(
                session, first=first, after=after, tag=f.tag, text=f.text, key=f.key
            )
        return connection_from_page(page, Workflow.from_model)

    @strawberry.field(permission_classes=[IsViewer])
    async def execution(self, info: Info[Context, None], id: strawberry.ID) -> Execution | None:
        ctx = info.context
        async with ctx.session() as session:
            row = await wf.get_execution(
                session, principal=ctx.require_principal(), execution_id=parse_id(id, "id")
            )
        return Execution.from_model(row)

    @strawberry.field(permission_classes=[IsViewer], description="Yours (all, for admins).")
    async def executions(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        filter: ExecutionFilter | None = None,
    ) -> ExecutionConnection:
        ctx = info.context
        f = filter or ExecutionFilter()
        # selected_fields holds this field itself: its selections are the connection's.
        below = [s for field in info.selected_fields for s in field.selections]
        wants_steps = _selects(below, ("edges", "node", "steps"))
        wants_workflow = _selects(below, ("edges", "node", "workflow"))
        # Reads only: autocommit, one round trip per statement. The steps and workflows
        # the page shows are read here too (one statement each, as the loaders would),
        # so their fields resolve without a task per execution. Workflow versions never
        # change: those the server holds already (snapshots.py) are not read again.
        snapshots = ctx.services.snapshots
        async with ctx.services.reader() as session:
            page = await wf.list_executions(
                session,
                principal=ctx.require_principal(),
                first=first,
                after=after,
                status=f.status,
                workflow_key=f.workflow_key,
            )
            ids = [row.id for row in page.items]
            steps = await wf.steps_by_execution(session, ids) if wants_steps and ids else []
            by_id = snapshots.held_workflows(row.workflow_id for row in page.items)
            unknown = list(
                dict.fromkeys(r.workflow_id for r in page.items if r.workflow_id not in by_id)
            )
            if wants_workflow and unknown:
                read = [w for w in await wf.workflows_by_id(session, unknown) if w is not None]
                snapshots.hold_workflows(read)
                by_id.update((w.id, w) for w in read)
        steps_of = dict(zip(ids, steps, strict=False))

        def node(row: WorkflowExecutionRow) -> Execution:
            execution = Execution.from_model(row)
            if wants_steps:
                execution.preloaded_steps = steps_of[row.id]
            execution.preloaded_workflow = by_id.get(row.workflow_id)
            return execution

        return connection_from_page(page, node)

    @strawberry.field(
        permission_classes=[IsViewer],
        description="An execution's or a schedule's history (its fires and refusals).",
    )
    async def events(
        self, info: Info[Context, None], stream_id: strawberry.ID, after: int | None = None
    ) -> list[Event]:
        ctx = info.context
        principal = ctx.require_principal()
        stream = parse_id(stream_id, "streamId")
        async with ctx.session() as session:
            if not await wf.owns_schedule(session, principal=principal, schedule_id=stream):
                await wf.get_execution(session, principal=principal, execution_id=stream)
            rows = await list_events(session, stream_id=stream, after=after)
        return [Event.from_model(r) for r in rows]

    @strawberry.field(permission_classes=[IsViewer], description="Yours (all, for admins).")
    async def schedules(self, info: Info[Context, None]) -> list[Schedule]:
        ctx = info.context
        async with ctx.session() as session:
            rows = await wf.list_schedules(session, principal=ctx.require_principal())
        return [Schedule.from_model(r) for r in rows]


@strawberry.type
class WorkflowMutation:
    @strawberry.mutation(permission_classes=[IsMember])
    async def create_workflow(
        self, info: Info[Context, None], input: CreateWorkflowInput
    ) -> Workflow:
        ctx = info.context
        async with ctx.session() as session:
            principal = ctx.require_principal()
            row = await wf.create_workflow(
                session,
                actor_id=principal.user_id,
                is_admin=principal.is_admin,
                key=input.key,
                version=input.version,
                name=input.name,
                steps=[input_data(s) for s in input.steps],
                description=input.description,
                tags=input.tags or [],
                input_schema=json_object(input.input_schema, "inputSchema") or None,
            )
        return Workflow.from_model(row)

    @strawberry.mutation(permission_classes=[IsMember])
    async def execute_workflow(
        self, info: Info[Context, None], input: ExecuteWorkflowInput
    ) -> Execution:
        ctx = info.context
        row = await ctx.services.workflow_engine.execute(
            principal=ctx.require_principal(),
            key=input.workflow_key,
            version=input.version,
            inputs=json_object(input.inputs, "inputs"),
            idempotency_key=input.idempotency_key,
        )
        return Execution.from_model(row)

    @strawberry.mutation(permission_classes=[IsMember])
    async def cancel_execution(self, info: Info[Context, None], id: strawberry.ID) -> Execution:
        ctx = info.context
        row = await ctx.services.workflow_engine.cancel(
            principal=ctx.require_principal(), execution_id=parse_id(id, "id")
        )
        return Execution.from_model(row)

    @strawberry.mutation(
        permission_classes=[IsMember], description="Re-run failed and skipped steps only."
    )
    async def retry_execution(self, info: Info[Context, None], id: strawberry.ID) -> Execution:
        ctx = info.context
        row = await ctx.services.workflow_engine.retry(
            principal=ctx.require_principal(), execution_id=parse_id(id, "id")
        )
        return Execution.from_model(row)

    @strawberry.mutation(permission_classes=[IsMember])
    async def approve_step(
        self,
        info: Info[Context, None],
        step_execution_id: strawberry.ID,
        approved: bool,
        comment: str | None = None,
    ) -> StepExecution:
        ctx = info.context
        row = await ctx.services.workflow_engine.approve(
            principal=ctx.require_principal(),
            step_id=parse_id(step_execution_id, "stepExecutionId"),
            approved=approved,
            comment=comment,
        )
        return StepExecution.from_model(row)

    @strawberry.mutation(permission_classes=[IsMember])
    async def create_schedule(self, info: Info[Context, None], input: ScheduleInput) -> Schedule:
        ctx = info.context
        async with ctx.session() as session:
            row = await wf.create_schedule(
                session,
                principal=ctx.require_principal(),
                workflow_key=input.workflow_key,
                workflow_version=input.version,
                kind=input.kind,
                expression=input.expression,
                timezone=input.timezone,
                inputs=json_object(input.inputs, "inputs"),
                enabled=input.enabled,
                follow_latest=input.follow_latest,
            )
        return Schedule.from_model(row)

    @strawberry.mutation(permission_classes=[IsMember])
    async def update_schedule(
        self, info: Info[Context, None], id: strawberry.ID, input: UpdateScheduleInput
    ) -> Schedule:
        ctx = info.context
        async with ctx.session() as session:
            row = await wf.update_schedule(
                session,
                principal=ctx.require_principal(),
                schedule_id=parse_id(id, "id"),
                expression=input.expression,
                timezone=input.timezone,
                inputs=None if input.inputs is None else json_object(input.inputs, "inputs"),
                enabled=input.enabled,
            )
        return Schedule.from_model(row)

    @strawberry.mutation(permission_classes=[IsMember])
    async def delete_schedule(self, info: Info[Context, None], id: strawberry.ID) -> bool:
        ctx = info.context
        async with ctx.session() as session:
            return await wf.delete_schedule(
                session, principal=ctx.require_principal(), schedule_id=parse_id(id, "id")
            )
