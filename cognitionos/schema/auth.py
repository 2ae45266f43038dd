"""GraphQL types for users, tokens, API keys and the audit log."""

from __future__ import annotations

from datetime import datetime

import strawberry

from cognitionos.db import models
from cognitionos.schema.common import JSON, Connection
from cognitionos.services.auth import TokenPair

__all__ = [
    "ApiKey",
    "ApiKeyCreated",
    "AuditEvent",
    "AuthPayload",
    "RegisterInput",
    "Role",
    "UpdateUserInput",
    "User",
    "UserStatus",
]

# The domain enums, registered with GraphQL under the same names.
Role = models.Role
UserStatus = models.UserStatus
strawberry.enum(Role, name="Role", description="What a user may do.")
strawberry.enum(UserStatus, name="UserStatus")


@strawberry.type
class User:
    id: strawberry.ID
    email: str
    full_name: str | None
    role: Role
    status: UserStatus
    created_at: datetime
    last_login_at: datetime | None
    locked_until: datetime | None

    @classmethod
    def from_model(cls, user: models.User) -> User:
        return cls(
            id=strawberry.ID(str(user.id)),
            email=user.email,
            full_name=user.full_name,
            role=user.role,
            status=user.status,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
            locked_until=user.locked_until,
        )


@strawberry.type
class AuthPayload:
    access_token: str
    refresh_token: str
    expires_in: int = strawberry.field(description="Seconds until the access token expires.")
    token_type: str
    user: User

    @classmethod
    def from_pair(cls, pair: TokenPair) -> AuthPayload:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            expires_in=pair.expires_in,
            token_type="Bearer",  # noqa: S106 (a scheme name, not a secret)
            user=User.from_model(pair.user),
        )


@strawberry.type
class ApiKey:
    id: strawberry.ID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_model(cls, key: models.ApiKey) -> ApiKey:
        return cls(
            id=strawberry.ID(str(key.id)),
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
        )


@strawberry.type
class ApiKeyCreated:
    api_key: ApiKey
    secret: str = strawberry.field(
        description="The key itself. Shown only here, once: it is stored hashed."
    )


@strawberry.type
class AuditEvent:
    id: strawberry.ID
    user_id: strawberry.ID | None
    event: str
    success: bool
    ip: str | None
    user_agent: str | None
    metadata: JSON
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.AuditEvent) -> AuditEvent:
        return cls(
            id=strawberry.ID(str(row.id)),
            user_id=strawberry.ID(str(row.user_id)) if row.user_id else None,
            event=row.event,
            success=row.success,
            ip=str(row.ip) if row.ip is not None else None,
            user_agent=row.user_agent,
            metadata=JSON(row.data),
            created_at=row.created_at,
        )


UserConnection = Connection[User]
AuditEventConnection = Connection[AuditEvent]


@strawberry.input
class RegisterInput:
    email: str
    password: str
    full_name: str | None = None


@strawberry.input
class UpdateUserInput:
    user_id: strawberry.ID
    role: Role | None = None
    status: UserStatus | None = None
