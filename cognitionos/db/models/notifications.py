"""Notifications, per-user channel preferences, and templates."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cognitionos.db.base import Base, TimestampMixin, UUIDPrimaryKey, utcnow
from cognitionos.db.models.auth import _enum

__all__ = [
    "Channel",
    "Notification",
    "NotificationPreference",
    "NotificationStatus",
    "NotificationTemplate",
    "Priority",
]


class Channel(StrEnum):
    IN_APP = "IN_APP"
    WEBHOOK = "WEBHOOK"
    EMAIL = "EMAIL"
    SLACK = "SLACK"
    TEAMS = "TEAMS"
    SMS = "SMS"


class Priority(StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class NotificationStatus(StrEnum):
    PENDING = "PENDING"  # held (quiet hours, digest window, rate limit) or not yet queued
    QUEUED = "QUEUED"  # due; a worker will send it
    SENT = "SENT"  # handed to the provider (SMTP, SMS)
    DELIVERED = "DELIVERED"  # accepted by the receiver (in-app, 2xx from a webhook)
    READ = "READ"  # in-app, marked read
    FAILED = "FAILED"
    SUPPRESSED = "SUPPRESSED"  # not sent on purpose: the reason says why


class Notification(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        # The delivery loop's scan: only what is still to send is indexed.
        Index(
            "ix_notifications_due",
            "scheduled_for",
            postgresql_where=text("status IN ('PENDING', 'QUEUED')"),
        ),
        Index("ix_notifications_user_channel", "user_id", "channel", "created_at"),
        Index(
            "ix_notifications_dedup",
            "user_id",
            "dedup_key",
            "created_at",
            postgresql_where=text("dedup_key IS NOT NULL"),
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "notification_channel"))
    template_key: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    priority: Mapped[Priority] = mapped_column(
        _enum(Priority, "notification_priority"), default=Priority.NORMAL
    )
    status: Mapped[NotificationStatus] = mapped_column(
        _enum(NotificationStatus, "notification_status"), default=NotificationStatus.PENDING
    )
    reason: Mapped[str | None] = mapped_column(Text)  # why held, suppressed or failed
    attempts: Mapped[int] = mapped_column(default=0)
    dedup_key: Mapped[str | None] = mapped_column(String(200))
    scheduled_for: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    digest_id: Mapped[uuid.UUID | None]  # the digest message that carried it
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None]


class NotificationPreference(Base):
    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[Channel] = mapped_column(
        _enum(Channel, "notification_channel"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(default=True)
    destination: Mapped[str | None] = mapped_column(Text)  # address, URL or phone number
    quiet_start: Mapped[time | None]
    quiet_end: Mapped[time | None]
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class NotificationTemplate(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "notification_templates"
    __table_args__ = (UniqueConstraint("key", "channel", name="uq_notification_templates_key"),)

    key: Mapped[str] = mapped_column(String(100))
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "notification_channel"))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None]
