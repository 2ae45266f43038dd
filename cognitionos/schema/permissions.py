"""Permission classes: who may reach a field. They raise our domain errors,
so the client sees UNAUTHENTICATED or FORBIDDEN with a reason."""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry import Info
from strawberry.permission import BasePermission

from cognitionos.db.models.auth import Role
from cognitionos.services.errors import Forbidden

__all__ = ["IsAdmin", "IsAuthenticated", "IsMember", "IsUserSession", "IsViewer"]


class IsAuthenticated(BasePermission):
    message = "authentication required"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.require_principal()
        return True


class _HasRole(BasePermission):
    role: ClassVar[Role]

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.require_principal().require(self.role)
        return True


class IsViewer(_HasRole):
    role = Role.VIEWER


class IsMember(_HasRole):
    role = Role.MEMBER


class IsAdmin(_HasRole):
    role = Role.ADMIN


class IsUserSession(BasePermission):
    """Only a user's own login, not an API key (keys cannot mint keys)."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.require_principal()
        if principal.api_key_id is not None:
            raise Forbidden("API keys cannot manage API keys; log in as the user")
        return True
