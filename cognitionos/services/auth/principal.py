"""Who is asking: a user, reached by JWT or API key, with a role and scopes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from cognitionos.db.models.auth import Role
from cognitionos.services.errors import Forbidden

__all__ = ["API_KEY_SCOPES", "Principal", "role_at_least"]

_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2}

# What an API key may do. A key never exceeds its owner's role.
API_KEY_SCOPES = ("read", "write", "admin")
_SCOPE_ROLE = {"admin": Role.ADMIN, "write": Role.MEMBER, "read": Role.VIEWER}


def role_at_least(role: Role, required: Role) -> bool:
    return _RANK[role] >= _RANK[required]


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    role: Role
    api_key_id: uuid.UUID | None = None
    scopes: frozenset[str] | None = None  # None: a user's own token, all their rights
    # The credential's login (refresh-token family) and when it stops being valid.
    session_id: uuid.UUID | None = None
    expires_at: datetime | None = None

    @property
    def effective_role(self) -> Role:
        """The user's role, capped by the API key's broadest scope."""
        if self.scopes is None:
            return self.role
        granted = [_SCOPE_ROLE[s] for s in self.scopes if s in _SCOPE_ROLE]
        if not granted:
            return Role.VIEWER
        cap = max(granted, key=_RANK.__getitem__)
        return self.role if _RANK[self.role] <= _RANK[cap] else cap

    @property
    def is_admin(self) -> bool:
        return self.effective_role is Role.ADMIN

    def require(self, role: Role) -> None:
        if not role_at_least(self.effective_role, role):
            via = " through this API key's scopes" if self.scopes is not None else ""
            raise Forbidden(f"this needs the {role.value} role{via}", requiredRole=role.value)

    def can_write(self) -> bool:
        return self.scopes is None or bool(self.scopes & {"write", "admin"})
