"""Notification resolvers: send, inbox, preferences, templates."""

from __future__ import annotations

import strawberry
from strawberry import Info

from cognitionos.context import Context
from cognitionos.db.models import Channel
from cognitionos.schema.common import connection_from_page, json_object, parse_id
from cognitionos.schema.notifications import (
    Notification,
    NotificationConnection,
    NotificationPreference,
    NotificationPreferenceInput,
    NotificationTemplate,
    NotificationTemplateInput,
    SendNotificationInput,
)
from cognitionos.schema.permissions import IsAdmin, IsMember, IsViewer
from cognitionos.services import notifications as notify

__all__ = ["NotificationMutation", "NotificationQuery"]


@strawberry.type
class NotificationQuery:
    @strawberry.field(
        permission_classes=[IsViewer],
        description="Your notifications, newest first: the in-app inbox unless a channel is given.",
    )
    async def notifications(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        unread_only: bool = False,
        channel: Channel | None = Channel.IN_APP,
    ) -> NotificationConnection:
        ctx = info.context
        async with ctx.session() as session:
            page = await notify.list_notifications(
                session,
                principal=ctx.require_principal(),
                channel=channel,
                unread_only=unread_only,
                first=first,
                after=after,
            )
        return connection_from_page(page, Notification.from_model)

    @strawberry.field(permission_classes=[IsViewer])
    async def unread_count(self, info: Info[Context, None]) -> int:
        ctx = info.context
        async with ctx.session() as session:
            return await notify.unread_count(session, ctx.require_principal().user_id)

    @strawberry.field(permission_classes=[IsViewer])
    async def notification_preferences(
        self, info: Info[Context, None]
    ) -> list[NotificationPreference]:
        ctx = info.context
        async with ctx.session() as session:
            rows = await notify.list_preferences(session, ctx.require_principal().user_id)
        return [NotificationPreference.from_model(r) for r in rows]

    @strawberry.field(permission_classes=[IsViewer])
    async def notification_templates(self, info: Info[Context, None]) -> list[NotificationTemplate]:
        async with info.context.session() as session:
            return [
                NotificationTemplate.from_model(t) for t in await notify.list_templates(session)
            ]


@strawberry.type
class NotificationMutation:
    @strawberry.mutation(
        permission_classes=[IsMember],
        description="Admins notify anyone; members themselves. Workers deliver it.",
    )
    async def send_notification(
        self, info: Info[Context, None], input: SendNotificationInput
    ) -> Notification:
        ctx = info.context
        async with ctx.session() as session:
            row = await notify.send_notification(
                session,
                settings=ctx.services.settings,
                renderer=ctx.services.renderer,
                principal=ctx.require_principal(),
                data=notify.NotificationInput(
                    user_id=parse_id(input.user_id, "userId"),
                    channel=input.channel,
                    template=input.template,
                    subject=input.subject,
                    body=input.body,
                    data=json_object(input.data, "data"),
                    priority=input.priority,
                    dedup_key=input.dedup_key,
                ),
            )
        return Notification.from_model(row)

    @strawberry.mutation(permission_classes=[IsViewer], description="How many were marked.")
    async def mark_notifications_read(
        self, info: Info[Context, None], ids: list[strawberry.ID]
    ) -> int:
        ctx = info.context
        async with ctx.session() as session:
            return await notify.mark_read(
                session, ctx.require_principal().user_id, [parse_id(i, "ids") for i in ids]
            )

    @strawberry.mutation(permission_classes=[IsViewer])
    async def mark_all_notifications_read(self, info: Info[Context, None]) -> int:
        ctx = info.context
        async with ctx.session() as session:
            return await notify.mark_all_read(session, ctx.require_principal().user_id)

    @strawberry.mutation(permission_classes=[IsViewer])
    async def update_notification_preference(
        self, info: Info[Context, None], input: NotificationPreferenceInput
    ) -> NotificationPreference:
        ctx = info.context
        async with ctx.session() as session:
            row = await notify.set_preference(
                session,
                user_id=ctx.require_principal().user_id,
                data=notify.PreferenceInput(
                    channel=input.channel,
                    enabled=input.enabled,
                    destination=input.destination,
                    quiet_start=input.quiet_hours_start,
                    quiet_end=input.quiet_hours_end,
                    timezone=input.timezone,
                    clear_quiet_hours=input.clear_quiet_hours,
                ),
            )
        return NotificationPreference.from_model(row)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def create_notification_template(
        self, info: Info[Context, None], input: NotificationTemplateInput
    ) -> NotificationTemplate:
        ctx = info.context
        async with ctx.session() as session:
            row = await notify.create_template(
                session,
                principal=ctx.require_principal(),
                key=input.key,
                channel=input.channel,
                subject=input.subject,
                body=input.body,
            )
        return NotificationTemplate.from_model(row)
