"""Feeds that are not event-sourced: notifications, agent status, streamed step output.

Producers publish a JSON object to the channel (``subscriptions.channels``); these
subscriptions map it to the schema type. The notifications and agents work are the
producers; the types follow DESIGN §4 so their clients can rely on them now.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from strawberry import Info

from cognitionos.context import Context
from cognitionos.schema.agents import Agent
from cognitionos.schema.common import parse_id
from cognitionos.schema.notifications import Notification
from cognitionos.schema.permissions import IsViewer
from cognitionos.services.workflows import get_step
from cognitionos.subscriptions.channels import (
    agents_channel,
    notifications_channel,
    step_output_channel,
)
from cognitionos.subscriptions.pubsub import RESYNC

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
    @strawberry.subscription(permission_classes=[IsViewer], description="Your new notifications.")
    async def notification_received(
        self, info: Info[Context, None]
    ) -> AsyncGenerator[Notification, None]:
        principal = info.context.require_principal()
        async for message in follow(info.context, notifications_channel(principal.user_id)):
            yield Notification.from_message(message)

    @strawberry.subscription(permission_classes=[IsViewer], description="Agent status changes.")
    async def agent_status_changed(self, info: Info[Context, None]) -> AsyncGenerator[Agent, None]:
        async for message in follow(info.context, agents_channel()):
            yield Agent.from_message(message)

    @strawberry.subscription(
        permission_classes=[IsViewer], description="Tokens of a running LLM step, as they come."
    )
    async def step_output(
        self, info: Info[Context, None], step_execution_id: strawberry.ID
    ) -> AsyncGenerator[str, None]:
        ctx = info.context
        step_id = parse_id(step_execution_id, "stepExecutionId")
        async with ctx.session() as session:
            await get_step(session, principal=ctx.require_principal(), step_id=step_id)
        async for message in follow(ctx, step_output_channel(step_id)):
            yield str(message.get("text", ""))
