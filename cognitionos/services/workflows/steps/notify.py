"""NOTIFY: a notification from a workflow, to its owner (or, for an admin's execution,
to ``userId``). Delivery is the notification loop's job; the step's output is the
notification's id and status when it was created."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from cognitionos.db.models import Channel, Priority
from cognitionos.services.errors import BadUserInput, CognitionError
from cognitionos.services.notifications import NotificationInput, send_notification
from cognitionos.services.workflows.steps.base import (
    StepContext,
    StepFailure,
    enum_value,
    register,
    require_fields,
)
from cognitionos.services.workflows.steps.memory import owner_principal

__all__ = ["NotifyStep"]


class NotifyStep:
    name: ClassVar[str] = "NOTIFY"
    templated: ClassVar[tuple[str, ...]] = ("subject", "body", "data", "dedupKey")
    waits_for_approval: ClassVar[bool] = False
    inline: ClassVar[bool] = False

    def validate(self, config: dict[str, Any], *, field: str) -> None:
        require_fields(
            config,
            field,
            {},
            {
                "channel": str,
                "template": str,
                "subject": str,
                "body": str,
                "data": dict,
                "priority": str,
                "userId": str,
                "dedupKey": str,
            },
        )
        if "body" not in config and "template" not in config:
            raise BadUserInput("config needs 'body' or 'template'", field=f"{field}.body")
        if "channel" in config:
            enum_value(Channel, config["channel"], f"{field}.channel")
        if "priority" in config:
            enum_value(Priority, config["priority"], f"{field}.priority")

    async def run(self, ctx: StepContext, config: dict[str, Any]) -> Any:
        principal = await owner_principal(ctx)
        try:
            user_id = uuid.UUID(config["userId"]) if config.get("userId") else principal.user_id
        except ValueError:
            raise StepFailure(
                f"userId {config['userId']!r} is not an id", retryable=False
            ) from None
        data = NotificationInput(
            user_id=user_id,
            channel=Channel(config.get("channel", Channel.IN_APP)),
            template=config.get("template"),
            subject=config.get("subject"),
            body=config.get("body"),
            data=dict(config.get("data") or {}),
            priority=Priority(config.get("priority", Priority.NORMAL)),
            # A retried step must not notify twice.
            dedup_key=config.get("dedupKey") or f"step:{ctx.step_id}",
        )
        try:
            async with ctx.sessionmaker() as session:
                notification = await send_notification(
                    session, settings=ctx.settings, principal=principal, data=data
                )
        except CognitionError as exc:
            raise StepFailure(f"{exc.code}: {exc.message}", retryable=False) from None
        return {"id": str(notification.id), "status": notification.status.value}


register(NotifyStep())
