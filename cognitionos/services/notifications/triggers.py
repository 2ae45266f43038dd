"""Execution events that notify the owner, written in the transition's own transaction
(so a crash cannot lose them): SUCCEEDED, FAILED and WAITING (for approval), on IN_APP
unless turned off, and on every other channel the owner's preferences turn on."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models import (
    Channel,
    Notification,
    NotificationPreference,
    NotificationStatus,
    Priority,
    Workflow,
    WorkflowExecution,
)

__all__ = ["TRIGGERS", "notify_owner"]

TRIGGERS = {
    "EXECUTION_SUCCEEDED": ("succeeded", Priority.NORMAL),
    "EXECUTION_FAILED": ("failed", Priority.HIGH),
    "EXECUTION_WAITING": ("is waiting for approval", Priority.HIGH),
}


async def notify_owner(session: AsyncSession, execution: WorkflowExecution, event: str) -> None:
    if event not in TRIGGERS or execution.created_by is None:
        return
    what, priority = TRIGGERS[event]
    prefs = {
        p.channel: p
        for p in (
            await session.scalars(
                select(NotificationPreference).where(
                    NotificationPreference.user_id == execution.created_by
                )
            )
        ).all()
    }
    channels = [
        c
        for c in Channel
        if (c is Channel.IN_APP and (c not in prefs or prefs[c].enabled))
        or (c is not Channel.IN_APP and c in prefs and prefs[c].enabled)
    ]
    if not channels:
        return
    key = await session.scalar(select(Workflow.key).where(Workflow.id == execution.workflow_id))
    body = f"Execution {execution.id} of {key} {what}."
    if execution.error and event == "EXECUTION_FAILED":
        body += f"\n{execution.error}"
    for channel in channels:
        session.add(
            Notification(
                user_id=execution.created_by,
                channel=channel,
                subject=f"Workflow {key} {what}",
                body=body,
                data={
                    "executionId": str(execution.id),
                    "workflowKey": key,
                    "status": execution.status.value,
                },
                priority=priority,
                status=NotificationStatus.PENDING,
                dedup_key=f"execution:{execution.id}:{event}:{execution.event_version}",
            )
        )
