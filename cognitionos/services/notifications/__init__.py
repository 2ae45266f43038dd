"""Notifications: templates, preferences, channels, the delivery loop, triggers."""

from __future__ import annotations

from cognitionos.services.notifications.delivery import deliver_due, notification_message
from cognitionos.services.notifications.inbox import (
    NotificationInput,
    create_notification,
    create_template,
    list_notifications,
    list_templates,
    mark_all_read,
    mark_read,
    send_notification,
    unread_count,
)
from cognitionos.services.notifications.preferences import (
    PreferenceInput,
    list_preferences,
    quiet_until,
    set_preference,
)
from cognitionos.services.notifications.service import NotificationService
from cognitionos.services.notifications.signing import sign, verify, webhook_secret

__all__ = [
    "NotificationInput",
    "NotificationService",
    "PreferenceInput",
    "create_notification",
    "create_template",
    "deliver_due",
    "list_notifications",
    "list_preferences",
    "list_templates",
    "mark_all_read",
    "mark_read",
    "notification_message",
    "quiet_until",
    "send_notification",
    "set_preference",
    "sign",
    "unread_count",
    "verify",
    "webhook_secret",
]
