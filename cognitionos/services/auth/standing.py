"""Work that runs later on a user's behalf (a schedule's fire, a step's claim) acts as that
user as they are *now*: a suspension or a demotion stops it, with a reason to record."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.auth import Role, User, UserStatus
from cognitionos.services.auth.principal import Principal, role_at_least
from cognitionos.services.errors import Forbidden

__all__ = ["acting_principal"]


async def acting_principal(
    session: AsyncSession, user_id: uuid.UUID | None, *, needs: Role = Role.MEMBER
) -> Principal:
    """The owner's principal, read now; ``Forbidden`` naming why they may no longer act."""
    user = await session.get(User, user_id) if user_id is not None else None
    if user is None:
        raise Forbidden("its owner's account no longer exists")
    if user.status is not UserStatus.ACTIVE:
        raise Forbidden(f"its owner's account is {user.status.value}")
    if not role_at_least(user.role, needs):
        raise Forbidden(
            f"its owner is now a {user.role.value}; running it needs the {needs.value} role"
        )
    return Principal(user_id=user.id, role=user.role)
