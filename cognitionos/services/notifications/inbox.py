"""Creating notifications (templates, dedup, rights) and the in-app inbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.config import Settings
from cognitionos.db.models import (
    Channel,
    Notification,
    NotificationStatus,
    NotificationTemplate,
    User,
)
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from cognitionos.services.inputs import NotificationInput
from cognitionos.services.pagination import Page, paginate
from cognitionos.services.templating import TemplateFailure, TemplateRenderer, check_template

__all__ = [
    "NotificationInput",
    "create_notification",
    "create_template",
    "list_notifications",
    "list_templates",
    "mark_all_read",
    "mark_read",
    "send_notification",
    "unread_count",
]


async def _render(
    session: AsyncSession, data: NotificationInput, renderer: TemplateRenderer
) -> tuple[str | None, str]:
    if data.template is None:
        if not (data.body or "").strip():
            raise BadUserInput("a body (or a template) is required", field="body")
        return data.subject, str(data.body)
    template = await session.scalar(
        select(NotificationTemplate).where(
            NotificationTemplate.key == data.template, NotificationTemplate.channel == data.channel
        )
    )
    if template is None:
        raise BadUserInput(
            f"no template {data.template!r} for channel {data.channel.value}", field="template"
        )
    variables = {"data": data.data, **data.data}
    texts = [template.body, template.subject] if template.subject else [template.body]
    try:
        rendered = await renderer.render_many(texts, variables)
    except TemplateFailure as exc:
        raise BadUserInput(
            f"template {data.template!r} cannot render: {exc}", field="data"
        ) from None
    return (rendered[1] if template.subject else data.subject), rendered[0]


async def create_notification(
    session: AsyncSession,
    *,
    settings: Settings,
    renderer: TemplateRenderer,
    data: NotificationInput,
    actor: uuid.UUID | None,
    now: datetime | None = None,
) -> tuple[Notification, bool]:
    """Add a PENDING notification in the caller's transaction (no commit). Returns it and
    whether it is new (False: the same dedup key within the window returned the first)."""
    now = now or datetime.now(UTC)
    if data.dedup_key:
        lock = f"notification:{data.user_id}:{data.dedup_key}"
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(lock))))
        first = await session.scalar(
            select(Notification)
            .where(
                Notification.user_id == data.user_id,
                Notification.dedup_key == data.dedup_key,
                Notification.created_at
                > now - timedelta(seconds=settings.notification_dedup_seconds),
            )
            .order_by(Notification.created_at)
            .limit(1)
        )
        if first is not None:
            return first, False
    subject, body = await _render(session, data, renderer)
    notification = Notification(
        user_id=data.user_id,
        channel=data.channel,
        template_key=data.template,
        subject=subject,
        body=body,
        data=data.data,
        priority=data.priority,
        status=NotificationStatus.PENDING,
        dedup_key=data.dedup_key,
        scheduled_for=now,
        created_at=now,
        created_by=actor,
    )
    session.add(notification)
    await session.flush()
    return notification, True


async def send_notification(
    session: AsyncSession,
    *,
    settings: Settings,
    renderer: TemplateRenderer,
    principal: Principal,
    data: NotificationInput,
) -> Notification:
    """Admins notify anyone, members themselves. Commits; workers deliver."""
    if data.user_id != principal.user_id and not principal.is_admin:
        raise Forbidden("members may only notify themselves")
    if await session.get(User, data.user_id) is None:
        raise NotFound("no such user", field="userId")
    notification, _ = await create_notification(
        session, settings=settings, renderer=renderer, data=data, actor=principal.user_id
    )
    await session.commit()
    return notification


async def create_template(
    session: AsyncSession,
    *,
    principal: Principal,
    key: str,
    channel: Channel,
    subject: str | None,
    body: str,
) -> NotificationTemplate:
    if not principal.is_admin:
        raise Forbidden("only admins manage notification templates")
    if not key.strip():
        raise BadUserInput("key is required", field="key")
    if not body.strip():
        raise BadUserInput("body is required", field="body")
    check_template(body, field="body")
    if subject:
        check_template(subject, field="subject")
    template = NotificationTemplate(
        key=key.strip(), channel=channel, subject=subject, body=body, created_by=principal.user_id
    )
    session.add(template)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(f"template {key!r} exists for {channel.value}", field="key") from None
    return template


async def list_templates(session: AsyncSession) -> list[NotificationTemplate]:
    stmt = select(NotificationTemplate).order_by(
        NotificationTemplate.key, NotificationTemplate.channel
    )
    return list((await session.scalars(stmt)).all())


async def list_notifications(
    session: AsyncSession,
    *,
    principal: Principal,
    channel: Channel | None,
    unread_only: bool,
    first: int | None,
    after: str | None,
) -> Page[Notification]:
    stmt = select(Notification).where(Notification.user_id == principal.user_id)
    if channel is not None:
        stmt = stmt.where(Notification.channel == channel)
    if unread_only:
        stmt = stmt.where(
            Notification.channel == Channel.IN_APP,
            Notification.status == NotificationStatus.DELIVERED,
        )
    return await paginate(session, Notification, stmt, first=first, after=after)


def _unread(user_id: uuid.UUID) -> list[Any]:
    return [
        Notification.user_id == user_id,
        Notification.channel == Channel.IN_APP,
        Notification.status == NotificationStatus.DELIVERED,
    ]


async def unread_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Notification).where(*_unread(user_id))
        )
        or 0
    )


async def mark_read(session: AsyncSession, user_id: uuid.UUID, ids: list[uuid.UUID]) -> int:
    result = await session.execute(
        update(Notification)
        .where(*_unread(user_id), Notification.id.in_(ids))
        .values(status=NotificationStatus.READ, read_at=datetime.now(UTC))
    )
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def mark_all_read(session: AsyncSession, user_id: uuid.UUID) -> int:
    result = await session.execute(
        update(Notification)
        .where(*_unread(user_id))
        .values(status=NotificationStatus.READ, read_at=datetime.now(UTC))
    )
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
