"""Feeds: notifications and agent status, from the moment the subscription starts.

Producers publish a JSON object to the channel (``subscriptions.channels``); these
subscriptions map it to the schema type. Nothing is replayed: a feed shows what happens
while it is open (sockets sharing one feed see the same, see ``multiplex``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from strawberry import Info

from cognitionos.context import Context
from cognitionos.pubsub import RESYNC
from cognitionos.schema.agents import Agent
from cognitionos.schema.notifications import Notification
from cognitionos.schema.permissions import IsViewer
from cognitionos.subscriptions.channels import agents_channel, notifications_channel

__all__ = ["FeedSubscription", "follow"]


async def follow(ctx: Context, channel: str) -> AsyncGenerator[dict[str, Any], None]:
    async with ctx.services.pubsub.subscribe(channel) as live:
        while True:
            message = await live.get()
            if message is not RESYNC:
                yield message


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@strawberry.type
class FeedSubscription:
    @strawberry.subscription(
        permission_classes=[IsViewer],
        description="Your in-app notifications as they are delivered, from now on.",
    )
    async def notification_received(
        self, info: Info[Context, None]
    ) -> AsyncGenerator[Notification, None]:
        principal = info.context.require_principal()
        async for message in follow(info.context, notifications_channel(principal.user_id)):
            yield Notification.from_message(message)

    @strawberry.subscription(
        permission_classes=[IsViewer], description="Agent load and status changes, from now on."
    )
    async def agent_status_changed(self, info: Info[Context, None]) -> AsyncGenerator[Agent, None]:
        async for message in follow(info.context, agents_channel()):
            yield Agent.from_message(message)
