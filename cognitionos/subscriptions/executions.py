"""``executionUpdated(id, after)``: replay from the event log, then live, no gap, no dup.

The subscriber joins the channel first, then replays stored events, then follows live
messages. Each stream's events carry consecutive versions: a live message that skips a
version, or a RESYNC from the hub (Redis reconnected), triggers a backfill from the
log; a version already delivered is dropped. Each event's snapshot is read in its own
short session, never through the connection's loaders.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry import Info

from cognitionos.context import Context
from cognitionos.db import models
from cognitionos.schema.common import parse_id
from cognitionos.schema.permissions import IsViewer
from cognitionos.schema.workflows import Execution, StepExecution
from cognitionos.services.events import channel_for, list_events, version_at
from cognitionos.services.workflows import get_execution
from cognitionos.services.workflows.transitions import STREAM
from cognitionos.subscriptions.pubsub import RESYNC

__all__ = ["ExecutionEvent", "ExecutionSubscription"]

_TERMINAL = {"EXECUTION_SUCCEEDED", "EXECUTION_FAILED", "EXECUTION_CANCELLED"}


@strawberry.type
class ExecutionEvent:
    position: int
    version: int
    type: str
    execution: Execution
    step: StepExecution | None


@dataclass(frozen=True)
class _Live:
    """A published event, as light as it can be (no ORM instance per subscriber)."""

    position: int
    version: int
    type: str
    data: dict[str, Any]


async def _load_snapshot(
    sessionmaker: async_sessionmaker[AsyncSession], execution_id: uuid.UUID
) -> tuple[models.WorkflowExecution, list[models.StepExecution], models.Workflow | None]:
    async with sessionmaker() as session:
        row = await session.get(models.WorkflowExecution, execution_id)
        assert row is not None
        steps = list(
            (
                await session.scalars(
                    select(models.StepExecution)
                    .where(models.StepExecution.execution_id == execution_id)
                    .order_by(models.StepExecution.created_at, models.StepExecution.step_key)
                )
            ).all()
        )
        workflow = await session.get(models.Workflow, row.workflow_id)
    return row, steps, workflow


_Snapshot = tuple[models.WorkflowExecution, list[models.StepExecution], models.Workflow | None]
_SNAPSHOTS: dict[tuple[uuid.UUID, int], asyncio.Task[_Snapshot]] = {}
_MAX_SNAPSHOTS = 512


async def _shared_snapshot(
    sessionmaker: async_sessionmaker[AsyncSession], execution_id: uuid.UUID, version: int
) -> _Snapshot:
    """One read per execution version per process, however many subscribers watch it."""
    key = (execution_id, version)
    task = _SNAPSHOTS.get(key)
    if task is None:
        if len(_SNAPSHOTS) >= _MAX_SNAPSHOTS:
            for old in list(_SNAPSHOTS)[: _MAX_SNAPSHOTS // 2]:
                del _SNAPSHOTS[old]
        task = asyncio.ensure_future(_load_snapshot(sessionmaker, execution_id))
        _SNAPSHOTS[key] = task
    try:
        return await asyncio.shield(task)
    except Exception:
        _SNAPSHOTS.pop(key, None)  # do not cache a failure
        raise


async def _snapshot(
    sessionmaker: async_sessionmaker[AsyncSession],
    execution_id: uuid.UUID,
    events: Sequence[models.Event | _Live],
) -> list[ExecutionEvent]:
    """The execution as of the newest of ``events``, read in a session of its own."""
    row, steps, workflow = await _shared_snapshot(
        sessionmaker, execution_id, max(e.version for e in events)
    )
    by_id = {str(s.id): s for s in steps}
    execution = Execution.from_model(row)
    execution.preloaded_steps = steps
    execution.preloaded_workflow = workflow
    return [
        ExecutionEvent(
            position=event.position,
            version=event.version,
            type=event.type,
            execution=execution,
            step=(
                StepExecution.from_model(by_id[event.data["stepId"]])
                if event.data.get("stepId") in by_id
                else None
            ),
        )
        for event in events
    ]


@strawberry.type
class ExecutionSubscription:
    @strawberry.subscription(
        permission_classes=[IsViewer],
        description="Every state change of an execution; with `after`, first the stored "
        "events after that position. Completes when the execution ends.",
    )
    async def execution_updated(
        self, info: Info[Context, None], id: strawberry.ID, after: int | None = None
    ) -> AsyncGenerator[ExecutionEvent, None]:
        ctx = info.context
        execution_id = parse_id(id, "id")
        sessionmaker = ctx.services.sessionmaker
        async with sessionmaker() as session:
            await get_execution(
                session, principal=ctx.require_principal(), execution_id=execution_id
            )
            delivered = (
                await version_at(session, stream_id=execution_id, position=after)
                if after is not None
                else 0
            )
        async with ctx.services.pubsub.subscribe(channel_for(STREAM, execution_id)) as live:
            pending: Sequence[models.Event | _Live] | None = None  # None: read the log
            while True:
                if pending is None:
                    async with sessionmaker() as session:
                        pending = list(
                            await list_events(
                                session, stream_id=execution_id, after_version=delivered
                            )
                        )
                if pending:
                    for event in await _snapshot(sessionmaker, execution_id, pending):
                        delivered = event.version
                        yield event
                        if event.type in _TERMINAL:
                            return
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
