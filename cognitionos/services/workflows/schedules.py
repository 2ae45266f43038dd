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

from cognitionos.db.models.auth import Role
from cognitionos.db.models.workflows import Schedule, ScheduleKind
from cognitionos.observability import get_logger
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BadUserInput, CognitionError, Forbidden, NotFound
from cognitionos.services.workflows.definitions import check_inputs, require_workflow
from cognitionos.services.workflows.engine import Engine
from cognitionos.services.workflows.transitions import now

__all__ = [
    "create_schedule",
    "delete_schedule",
    "list_schedules",
    "next_fire",
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
) -> Schedule:
    workflow = await require_workflow(session, key=workflow_key, version=workflow_version)
    check_inputs(workflow.input_schema, inputs or {})
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
            key = f"schedule:{schedule.id}:{schedule.next_run_at.isoformat()}"
            if schedule.created_by is None:
                schedule.enabled = False
                continue
            try:
                execution = await engine.execute(
                    principal=Principal(user_id=schedule.created_by, role=Role.MEMBER),
                    key=schedule.workflow_key,
                    version=schedule.workflow_version,
                    inputs=dict(schedule.inputs),
                    idempotency_key=key,
                )
                schedule.last_execution_id = execution.id
                fired += 1
            except CognitionError as exc:
                log.warning("scheduled run refused", schedule=str(schedule.id), error=exc.message)
            schedule.last_run_at = now()
            schedule.next_run_at = next_fire(
                schedule.kind, schedule.expression, schedule.timezone, now()
            )
            if schedule.next_run_at is None:
                schedule.enabled = False
        await session.commit()
    return fired
