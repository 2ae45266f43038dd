"""NOTIFY: a notification from a workflow, to its owner (or, for an admin's execution,
to ``userId``). Delivery is the notification loop's job; the step's output is the
notification's id and status when it was created."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Self

from pydantic import StrictStr, model_validator

from cognitionos.db.models import Channel, Priority
from cognitionos.services.errors import CognitionError
from cognitionos.services.inputs import NotificationInput
from cognitionos.services.specs import spec_error
from cognitionos.services.workflows.steps.base import (
    Kind,
    StepConfig,
    StepContext,
    StepFailure,
    register,
)
from cognitionos.services.workflows.steps.memory import owner_principal

__all__ = ["NotifyConfig", "NotifyStep"]


class NotifyConfig(StepConfig):
    channel: Channel = Channel.IN_APP
    template: StrictStr | None = None
    subject: StrictStr | None = None
    body: StrictStr | None = None
    data: dict[str, Any] = {}
    priority: Priority = Priority.NORMAL
    user_id: StrictStr | None = None
    dedup_key: StrictStr | None = None

    @model_validator(mode="after")
    def _says_something(self) -> Self:
        if self.body is None and self.template is None:
            raise spec_error("config needs 'body' or 'template'", field="body")
        return self


class NotifyStep(Kind):
    name: ClassVar[str] = "NOTIFY"
    config_model = NotifyConfig
    templated: ClassVar[tuple[str, ...]] = ("subject", "body", "data", "dedupKey")

    async def run(self, ctx: StepContext, raw: dict[str, Any]) -> Any:
        notifications = ctx.notifications
        if notifications is None:
            raise StepFailure("notifications are not available in this worker", retryable=False)
        config = NotifyConfig.read(raw)
        principal = await owner_principal(ctx)
        try:
            user_id = uuid.UUID(config.user_id) if config.user_id else principal.user_id
        except ValueError:
            raise StepFailure(f"userId {config.user_id!r} is not an id", retryable=False) from None
        data = NotificationInput(
            user_id=user_id,
            **config.model_dump(exclude={"user_id", "dedup_key"}),
            # A retried step must not notify twice.
            dedup_key=config.dedup_key or f"step:{ctx.step_id}",
        )
        try:
            async with ctx.sessionmaker() as session:
                notification = await notifications.send(session, principal=principal, data=data)
        except CognitionError as exc:
            raise StepFailure(f"{exc.code}: {exc.message}", retryable=False) from None
        return {"id": str(notification.id), "status": notification.status.value}


register(NotifyStep())
