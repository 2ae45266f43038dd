"""Notifications as the workflow engine uses them (a NOTIFY step's notification, the
owner's notices of an execution's end): built once by the runtime and handed to the
engine, whose ``ports.Notifications`` it matches by shape (this package does not import
the engine)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.config import Settings
from cognitionos.db.models import Notification, WorkflowExecution
from cognitionos.services.auth import Principal
from cognitionos.services.inputs import NotificationInput
from cognitionos.services.notifications.inbox import send_notification
from cognitionos.services.notifications.triggers import notify_owner
from cognitionos.services.templating import TemplateRenderer

__all__ = ["NotificationService"]


class NotificationService:
    def __init__(self, settings: Settings, renderer: TemplateRenderer) -> None:
        self.settings = settings
        self.renderer = renderer  # notification templates render in its processes

    async def send(
        self, session: AsyncSession, *, principal: Principal, data: NotificationInput
    ) -> Notification:
        return await send_notification(
            session,
            settings=self.settings,
            renderer=self.renderer,
            principal=principal,
            data=data,
        )

    async def notify_owner(
        self, session: AsyncSession, execution: WorkflowExecution, event: str
    ) -> None:
        await notify_owner(session, execution, event)
