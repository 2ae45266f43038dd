"""The auth audit log: one row per auth event, success or not."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.auth import AuditEvent
from cognitionos.services.pagination import Page, paginate

__all__ = ["AuditKind", "ClientInfo", "list_audit_events", "record_event"]


class AuditKind(StrEnum):
    REGISTER = "REGISTER"
    USER_CREATED = "USER_CREATED"
    USER_UPDATED = "USER_UPDATED"
    LOGIN = "LOGIN"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    TOKEN_REFRESH = "TOKEN_REFRESH"  # noqa: S105 (an event name)
    TOKEN_REUSE_DETECTED = "TOKEN_REUSE_DETECTED"  # noqa: S105
    LOGOUT = "LOGOUT"
    API_KEY_CREATED = "API_KEY_CREATED"
    API_KEY_REVOKED = "API_KEY_REVOKED"


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from, for the audit log."""

    ip: str | None = None
    user_agent: str | None = None


def record_event(
    session: AsyncSession,
    *,
    kind: AuditKind,
    success: bool,
    client: ClientInfo,
    user_id: uuid.UUID | None = None,
    **data: Any,
) -> None:
    """Add an audit row to the caller's transaction."""
    session.add(
        AuditEvent(
            user_id=user_id,
            event=kind.value,
            success=success,
            ip=client.ip,
            user_agent=(client.user_agent or "")[:400] or None,
            data=data,
        )
    )


async def list_audit_events(
    session: AsyncSession,
    *,
    first: int | None,
    after: str | None,
    user_id: uuid.UUID | None = None,
    kind: str | None = None,
) -> Page[AuditEvent]:
    stmt = select(AuditEvent)
    if user_id is not None:
        stmt = stmt.where(AuditEvent.user_id == user_id)
    if kind is not None:
        stmt = stmt.where(AuditEvent.event == kind)
    return await paginate(session, AuditEvent, stmt, first=first, after=after)
