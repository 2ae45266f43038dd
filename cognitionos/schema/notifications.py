"""GraphQL types for notifications, preferences and templates."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

import strawberry

from cognitionos.db import models
from cognitionos.db.models import Channel, NotificationStatus, Priority
from cognitionos.schema.common import JSON, Connection

__all__ = [
    "Notification",
    "NotificationConnection",
    "NotificationPreference",
    "NotificationPreferenceInput",
    "NotificationTemplate",
    "NotificationTemplateInput",
    "SendNotificationInput",
]

strawberry.enum(Channel, name="NotificationChannel")
strawberry.enum(Priority, name="NotificationPriority")
strawberry.enum(NotificationStatus, name="NotificationStatus")


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@strawberry.type
class Notification:
    id: strawberry.ID
    channel: Channel
    subject: str | None
    body: str
    data: JSON
    priority: Priority
    status: NotificationStatus
    reason: str | None = strawberry.field(description="Why it is held, suppressed or failed.")
    attempts: int
    created_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None

    @classmethod
    def from_model(cls, row: models.Notification) -> Notification:
        return cls(
            id=strawberry.ID(str(row.id)),
            channel=row.channel,
            subject=row.subject,
            body=row.body,
            data=JSON(row.data or {}),
            priority=row.priority,
            status=row.status,
            reason=row.reason,
            attempts=row.attempts,
            created_at=row.created_at,
            sent_at=row.sent_at,
            delivered_at=row.delivered_at,
            read_at=row.read_at,
        )

    @classmethod
    def from_message(cls, m: dict[str, Any]) -> Notification:
        """From the JSON published on ``notificationReceived``."""
        return cls(
            id=strawberry.ID(str(m.get("id", ""))),
            channel=Channel(m.get("channel", Channel.IN_APP)),
            subject=m.get("subject"),
            body=str(m.get("body", "")),
            data=JSON(m.get("data") or {}),
            priority=Priority(m.get("priority", Priority.NORMAL)),
            status=NotificationStatus(m.get("status", NotificationStatus.DELIVERED)),
            reason=None,
            attempts=int(m.get("attempts", 1)),
            created_at=_when(m.get("createdAt")),
            sent_at=None,
            delivered_at=None,
            read_at=None,
        )


NotificationConnection = Connection[Notification]


@strawberry.type
class NotificationPreference:
    channel: Channel
    enabled: bool
    destination: str | None
    quiet_hours_start: time | None
    quiet_hours_end: time | None
    timezone: str

    @classmethod
    def from_model(cls, row: models.NotificationPreference) -> NotificationPreference:
        return cls(
            channel=row.channel,
            enabled=row.enabled,
            destination=row.destination,
            quiet_hours_start=row.quiet_start,
            quiet_hours_end=row.quiet_end,
            timezone=row.timezone,
        )


@strawberry.type
class NotificationTemplate:
    id: strawberry.ID
    key: str
    channel: Channel
    subject: str | None
    body: str
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.NotificationTemplate) -> NotificationTemplate:
        return cls(
            id=strawberry.ID(str(row.id)),
            key=row.key,
            channel=row.channel,
            subject=row.subject,
            body=row.body,
            created_at=row.created_at,
        )


@strawberry.input
class SendNotificationInput:
    user_id: strawberry.ID
    channel: Channel = Channel.IN_APP
    template: str | None = None
    subject: str | None = None
    body: str | None = None
    data: JSON | None = None
    priority: Priority = Priority.NORMAL
    dedup_key: str | None = strawberry.field(
        default=None, description="A repeat within 24 h returns the first notification."
    )


@strawberry.input
class NotificationPreferenceInput:
    channel: Channel
    enabled: bool | None = None
    destination: str | None = strawberry.field(
        default=None, description="Email address, webhook URL or phone number."
    )
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None
    timezone: str | None = strawberry.field(default=None, description="IANA, e.g. Europe/Paris")
    clear_quiet_hours: bool = False


@strawberry.input
class NotificationTemplateInput:
    key: str
    channel: Channel
    body: str = strawberry.field(description="Jinja2; a missing variable fails the send.")
    subject: str | None = None
