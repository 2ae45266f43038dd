"""``executionUpdated(id, after)``: replay from the event log, then live, no gap, no dup.

The subscriber joins the channel first, then replays stored events, then follows live
messages. Each stream's events carry consecutive versions: a live message that skips a
version, or a RESYNC from the hub (Redis reconnected), triggers a backfill from the
log; a version already delivered is dropped.

Each event carries the state it left behind (``transitions.record``): the payload is
built from the event alone, so a replayed event and the same event seen live are the
same. Only ``execution.steps`` is read as it is now, lazily, in a session of its own
(never through the connection's loaders). Events stored before they carried their state
fall back to the current rows, keeping the status and attempt they did record.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import Info

from cognitionos.context import Context
from cognitionos.db import models
from cognitionos.pubsub import RESYNC
from cognitionos.schema.common import JSON, parse_id
from cognitionos.schema.permissions import IsViewer
from cognitionos.schema.workflows import Execution, ExecutionStatus, StepExecution, StepStatus
from cognitionos.services.events import channel_for, version_at
from cognitionos.services.workflows import get_execution
from cognitionos.services.workflows.snapshots import ExecutionSnapshots
from cognitionos.services.workflows.transitions import STREAM

__all__ = ["ExecutionEvent", "ExecutionSubscription"]

_PAGE = 1000  # stored events read at a time


@strawberry.type(
    description="One state change of an execution, as it was at that event: a replay "
    "and the live stream give the same payload for the same position."
)
class ExecutionEvent:
    position: int
    version: int
    type: str
    data: JSON = strawberry.field(description="The event's data, as stored.")
    execution: Execution = strawberry.field(
        description="The execution as of this event (its `steps`: as they are now)."
    )
    step: StepExecution | None = strawberry.field(
        description="The step the event is about, as of this event."
    )


@dataclass(frozen=True)
class _Live:
    """An event, stored or published, as light as it can be (no ORM instance kept per
    subscriber)."""

    position: int
    version: int
    type: str
    data: dict[str, Any]


def _canonical(value: Any) -> Any:
    """Objects with sorted keys: stored JSONB and a published message list keys in
    different orders, and both paths must serialize alike."""
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


async def _events(
    snapshots: ExecutionSnapshots,
    base: Execution,
    events: Sequence[_Live],
) -> list[ExecutionEvent]:
    execution_id = base.model.id
    stream = str(execution_id)
    found = []
    for event in events:
        data = _canonical(event.data)
        version = event.version
        state = data.get("execution")
        step_state = data.get("step")
        if state is not None and (step_state is not None or "stepId" not in data):
            execution = base.at(state)
            step = StepExecution.from_state(step_state, stream) if step_state else None
        else:  # recorded before events carried their state
            execution, step = await _from_current(snapshots, base, data, version)
        execution.load_steps = functools.partial(_steps_now, snapshots, execution_id, version)
        found.append(
            ExecutionEvent(
                position=event.position,
                version=version,
                type=event.type,
                data=JSON(data),
                execution=execution,
                step=step,
            )
        )
    return found


async def _steps_now(
    snapshots: ExecutionSnapshots, execution_id: uuid.UUID, version: int
) -> list[models.StepExecution]:
    return (await snapshots.current(execution_id, version))[1]


async def _from_current(
    snapshots: ExecutionSnapshots,
    base: Execution,
    data: dict[str, Any],
    version: int,
) -> tuple[Execution, StepExecution | None]:
    row, steps = await snapshots.current(base.model.id, version)
    execution = Execution.from_model(row)
    execution.preloaded_workflow = base.preloaded_workflow
    if "executionStatus" in data:
        execution.status = ExecutionStatus(data["executionStatus"])
    by_id = {str(s.id): s for s in steps}
    row_step = by_id.get(data.get("stepId", ""))
    if row_step is None:
        return execution, None
    step = StepExecution.from_model(row_step)
    if "status" in data:
        step.status = StepStatus(data["status"])
    if "attempt" in data:
        step.attempt = data["attempt"]
    return execution, step


async def _log(session: AsyncSession, execution_id: uuid.UUID, after: int) -> list[_Live]:
    """At most ``_PAGE`` stored events after version ``after``, as plain values (columns,
    not ORM rows: nothing enters the session, nothing is kept)."""
    E = models.Event
    rows = await session.execute(
        select(E.position, E.version, E.type, E.data)
        .where(E.stream_id == execution_id, E.version > after)
        .order_by(E.version)
        .limit(_PAGE)
    )
    return [_Live(*row) for row in rows]


@strawberry.type
class ExecutionSubscription:
    @strawberry.subscription(
        permission_classes=[IsViewer],
        description="Every state change of an execution, each with the state as it was at "
        "that event; with `after`, first the stored events after that position (none: "
        "from the start). No gap, no duplicate. Completes when the execution ends (a replay "
        "goes past the end of a run that was retried since).",
    )
    async def execution_updated(
        self, info: Info[Context, None], id: strawberry.ID, after: int | None = None
    ) -> AsyncGenerator[ExecutionEvent, None]:
        ctx = info.context
        execution_id = parse_id(id, "id")
        snapshots = ctx.services.snapshots  # this server's, shared by its subscribers
        reader = ctx.services.reader
        # Listen before reading the log: nothing published in between is lost.
        async with ctx.services.pubsub.subscribe(channel_for(STREAM, execution_id)) as live:
            # One-statement reads: autocommit, no BEGIN/ROLLBACK round trips.
            async with reader() as session:
                row = await get_execution(
                    session, principal=ctx.require_principal(), execution_id=execution_id
                )
                workflow = await snapshots.workflow(session, row.workflow_id)
                delivered = (
                    await version_at(session, stream_id=execution_id, position=after)
                    if after is not None
                    else 0
                )
                pending: Sequence[_Live] | None = await _log(session, execution_id, delivered)
            base = Execution.from_model(row)  # what never changes; each event brings the rest
            base.preloaded_workflow = workflow
            # The stream ends with the execution: once the last event it knows of left the
            # execution finished (the state each event records, so a step that stopped
            # after its run was cancelled ends it too). Not at every terminal event of a
            # replay: a cancelled or failed run may have been retried since, and its
            # replay goes on to what followed.
            ended = row.status.terminal
            while True:
                if pending is None:  # read the log
                    async with reader() as session:
                        pending = await _log(session, execution_id, delivered)
                if pending:
                    for event in await _events(snapshots, base, pending):
                        delivered = event.version
                        ended = event.execution.status.terminal
                        yield event
                    del event  # hold no event while waiting
                    if len(pending) == _PAGE:  # the log may hold more: read on
                        pending = None
                        continue
                if ended:
                    return
                pending = ()
                message = await live.get()
                if message is RESYNC:
                    pending = None
                    continue
                version = int(message.get("version", 0))
                if version <= delivered:
                    pending = []  # already delivered (replay and live overlap)
                elif version == delivered + 1:
                    pending = [
                        _Live(
                            position=message["position"],
                            version=version,
                            type=message["type"],
                            data=message.get("data") or {},
                        )
                    ]
                else:
                    pending = None  # a gap: read the log
