"""Feeds that are not event-sourced: streamed step output (LLM tokens).

The channels for notifications and agent status are named in ``subscriptions.channels``
and follow the same path (``follow``); their subscriptions join the schema with the
Notification and Agent types.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry import Info

from cognitionos.context import Context
from cognitionos.schema.common import parse_id
from cognitionos.schema.permissions import IsViewer
from cognitionos.services.workflows import get_step
from cognitionos.subscriptions.channels import step_output_channel
from cognitionos.subscriptions.pubsub import RESYNC

__all__ = ["FeedSubscription", "follow"]


async def follow(ctx: Context, channel: str) -> AsyncGenerator[dict[str, Any], None]:
    async with ctx.services.pubsub.subscribe(channel) as live:
        while True:
            message = await live.get()
            if message is not RESYNC:
                yield message


@strawberry.type
class FeedSubscription:
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
