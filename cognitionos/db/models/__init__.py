"""ORM models, one module per domain."""

from __future__ import annotations

from cognitionos.db.models.auth import ApiKey, AuditEvent, RefreshToken, Role, User, UserStatus

__all__ = ["ApiKey", "AuditEvent", "RefreshToken", "Role", "User", "UserStatus"]
