"""Cheap questions the background loops ask before a pass: is anything due at all?

A pass locks rows in a transaction (BEGIN, SELECT … FOR UPDATE SKIP LOCKED, COMMIT) even
when there is nothing to do, which is most of the time. One read without a transaction
answers "nothing" for a fraction of that; the pass runs only when the answer is yes.
Times are the worker's clock, as the passes use it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Exists, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.db.models.notifications import Notification, NotificationStatus
from cognitionos.db.models.workflows import Schedule, StepExecution, StepStatus

__all__ = ["notifications_due", "schedules_due", "steps_in_flight"]

_IN_FLIGHT = (StepStatus.RUNNING, StepStatus.QUEUED, StepStatus.RETRYING)
_UNSENT = (NotificationStatus.PENDING, NotificationStatus.QUEUED)


async def _ask(reader: async_sessionmaker[AsyncSession], clause: Exists) -> bool:
    async with reader() as session:
        return bool(await session.scalar(select(clause)))


async def steps_in_flight(reader: async_sessionmaker[AsyncSession]) -> bool:
    """The reconciler has nothing to heal unless a step is running, queued or retrying."""
    return await _ask(reader, exists().where(StepExecution.status.in_(_IN_FLIGHT)))


async def schedules_due(reader: async_sessionmaker[AsyncSession]) -> bool:
    return await _ask(
        reader, exists().where(Schedule.enabled, Schedule.next_run_at <= datetime.now(UTC))
    )


async def notifications_due(reader: async_sessionmaker[AsyncSession]) -> bool:
    return await _ask(
        reader,
        exists().where(
            Notification.status.in_(_UNSENT), Notification.scheduled_for <= datetime.now(UTC)
        ),
    )
