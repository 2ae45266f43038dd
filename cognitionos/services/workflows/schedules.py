"""Schedules: CRON (with time zone), INTERVAL (seconds) and ONCE (ISO time).

Each due fire runs exactly once across any number of workers: the due rows are claimed
with ``FOR UPDATE SKIP LOCKED`` and the execution carries the idempotency key
``schedule:<id>:<due time>``. After downtime, missed fires collapse into one run.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.workflows import Schedule, ScheduleKind
from cognitionos.observability import get_logger
from cognitionos.services.auth import Principal, acting_principal
from cognitionos.services.errors import BadUserInput, CognitionError, Forbidden, NotFound
from cognitionos.services.events import append_event
from cognitionos.services.workflows.definitions import (
    check_inputs,
    controls_key,
    require_workflow,
)
from cognitionos.services.workflows.engine import Engine
from cognitionos.services.workflows.transitions import now

__all__ = [
    "create_schedule",
    "delete_schedule",
    "list_schedules",
    "next_fire",
    "owns_schedule",
    "tick",
    "update_schedule",
]

log = get_logger("cognitionos.schedules")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadUserInput(f"unknown time zone {name!r}", field="timezone") from None


def next_fire(
    kind: ScheduleKind, expression: str, timezone: str, after: datetime
) -> datetime | None:
    """The first fire strictly after ``after`` (None: a ONCE schedule already past)."""
    if kind is ScheduleKind.CRON:
        if not croniter.is_valid(expression):
            raise BadUserInput(f"invalid cron expression {expression!r}", field="expression")
        local = after.astimezone(_zone(timezone))
        fire: datetime = croniter(expression, local).get_next(datetime)
        return fire.astimezone(after.tzinfo)
    if kind is ScheduleKind.INTERVAL:
        try:
            seconds = float(expression)
        except ValueError:
            raise BadUserInput("INTERVAL takes a number of seconds", field="expression") from None
        if seconds < 1:
            raise BadUserInput("INTERVAL must be at least 1 second", field="expression")
        return after + timedelta(seconds=seconds)
    try:
        at = datetime.fromisoformat(expression)
    except ValueError:
        raise BadUserInput("ONCE takes an ISO-8601 date and time", field="expression") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=_zone(timezone))
    return at if at > after else None


def _owned(schedule: Schedule | None, principal: Principal, schedule_id: uuid.UUID) -> Schedule:
    if schedule is None:
        raise NotFound(f"schedule {schedule_id} not found")
    if schedule.created_by != principal.user_id and not principal.is_admin:
        raise Forbidden("this schedule belongs to another user")
    return schedule


async def create_schedule(
    session: AsyncSession,
    *,
    principal: Principal,
    workflow_key: str,
    workflow_version: str | None,
    kind: ScheduleKind,
    expression: str,
    timezone: str = "UTC",
    inputs: dict[str, Any] | None = None,
    enabled: bool = True,
    follow_latest: bool = False,
) -> Schedule:
    """A schedule runs the version it names, else the latest one *now* (recorded). Only
    who controls a key (its owner, an admin) may follow its latest version, since whoever
    adds a version decides what the schedule runs."""
    if follow_latest:
        if workflow_version is not None:
            raise BadUserInput("give a version or followLatest, not both", field="followLatest")
        if not await controls_key(
            session, key=workflow_key, actor_id=principal.user_id, is_admin=principal.is_admin
        ):
            raise Forbidden(
                f"only the owner of workflow key {workflow_key} (or an admin) may follow its "
                "latest version; pin a version instead",
                field="followLatest",
            )
    workflow = await require_workflow(session, key=workflow_key, version=workflow_version)
    check_inputs(workflow.input_schema, inputs or {})
    if not follow_latest:
        workflow_version = workflow.version
    _zone(timezone)
    first = next_fire(kind, expression.strip(), timezone, now())
    if first is None:
        raise BadUserInput("that time is already past", field="expression")
    schedule = Schedule(
        workflow_key=workflow_key,
        workflow_version=workflow_version,
        kind=kind,
        expression=expression.strip(),
        timezone=timezone,
        inputs=inputs or {},
        enabled=enabled,
        next_run_at=first,
        created_by=principal.user_id,
    )
    session.add(schedule)
    await session.commit()
    return schedule


async def owns_schedule(
    session: AsyncSession, *, principal: Principal, schedule_id: uuid.UUID
) -> bool:
    """Whether this is a schedule the principal may read (theirs; any, for admins)."""
    schedule = await session.get(Schedule, schedule_id)
    return schedule is not None and (schedule.created_by == principal.user_id or principal.is_admin)


async def list_schedules(session: AsyncSession, *, principal: Principal) -> Sequence[Schedule]:
    stmt = select(Schedule).order_by(Schedule.created_at.desc())
    if not principal.is_admin:
        stmt = stmt.where(Schedule.created_by == principal.user_id)
    return (await session.scalars(stmt)).all()


async def update_schedule(
    session: AsyncSession,
    *,
    principal: Principal,
    schedule_id: uuid.UUID,
    expression: str | None = None,
    timezone: str | None = None,
    inputs: dict[str, Any] | None = None,
    enabled: bool | None = None,
) -> Schedule:
    schedule = _owned(
        await session.get(Schedule, schedule_id, with_for_update=True), principal, schedule_id
    )
    if expression is not None:
        schedule.expression = expression.strip()
    if timezone is not None:
        _zone(timezone)
        schedule.timezone = timezone
    if inputs is not None:
        workflow = await require_workflow(
            session, key=schedule.workflow_key, version=schedule.workflow_version
        )
        check_inputs(workflow.input_schema, inputs)
        schedule.inputs = inputs
    if enabled is not None:
        schedule.enabled = enabled
    if expression is not None or timezone is not None or enabled:
        schedule.next_run_at = next_fire(
            schedule.kind, schedule.expression, schedule.timezone, now()
        )
    await session.commit()
    return schedule


async def delete_schedule(
    session: AsyncSession, *, principal: Principal, schedule_id: uuid.UUID
) -> bool:
    schedule = _owned(await session.get(Schedule, schedule_id), principal, schedule_id)
    await session.delete(schedule)
    await session.commit()
    return True


async def _fire_as(session: AsyncSession, schedule: Schedule) -> Principal:
    """The owner as they are now; a schedule following a key's latest version also
    needs its owner to still control that key."""
    try:
        principal = await acting_principal(session, schedule.created_by)
    except Forbidden as exc:
        raise Forbidden(f"schedule not run: {exc.message}") from None
    if schedule.workflow_version is None and not await controls_key(
        session,
        key=schedule.workflow_key,
        actor_id=principal.user_id,
        is_admin=principal.is_admin,
    ):
        raise Forbidden(
            f"schedule not run: it follows the latest version of {schedule.workflow_key}, "
            "a key its owner does not control; pin a version"
        )
    return principal


async def tick(engine: Engine, *, batch: int = 50) -> int:
    """Fire every due schedule once; returns how many fired."""
    fired = 0
    async with engine.sessionmaker() as session:
        due = (
            await session.scalars(
                select(Schedule)
                .where(Schedule.enabled, Schedule.next_run_at <= now())
                .order_by(Schedule.next_run_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for schedule in due:
            assert schedule.next_run_at is not None
            due_at = schedule.next_run_at.isoformat()
            key = f"schedule:{schedule.id}:{due_at}"
            try:
                principal = await _fire_as(session, schedule)
                execution = await engine.execute(
                    principal=principal,
                    key=schedule.workflow_key,
                    version=schedule.workflow_version,
                    inputs=dict(schedule.inputs),
                    idempotency_key=key,
                )
                schedule.last_execution_id = execution.id
                fired += 1
                await append_event(
                    session,
                    stream_type="schedule",
                    stream_id=schedule.id,
                    type="SCHEDULE_FIRED",
                    data={"dueAt": due_at, "executionId": str(execution.id)},
                )
            except CognitionError as exc:
                log.warning("scheduled run refused", schedule=str(schedule.id), error=exc.message)
                await append_event(
                    session,
                    stream_type="schedule",
                    stream_id=schedule.id,
                    type="SCHEDULE_FIRE_REFUSED",
                    data={"dueAt": due_at, "error": exc.message},
                )
            schedule.last_run_at = now()
            schedule.next_run_at = next_fire(
                schedule.kind, schedule.expression, schedule.timezone, now()
            )
            if schedule.next_run_at is None:
                schedule.enabled = False
        await session.commit()
    return fired
