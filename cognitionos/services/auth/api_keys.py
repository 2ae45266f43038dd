"""API keys: ``cos_<prefix>_<secret>``, stored as a SHA-256 hash, shown once."""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.auth import ApiKey, User, UserStatus
from cognitionos.services.auth.audit import AuditKind, ClientInfo, record_event
from cognitionos.services.auth.principal import API_KEY_SCOPES, Principal
from cognitionos.services.auth.tokens import hash_secret
from cognitionos.services.errors import BadUserInput, NotFound, Unauthenticated

__all__ = [
    "KEY_PREFIX",
    "LAST_USED_RESOLUTION",
    "authenticate_api_key",
    "create_api_key",
    "key_principal",
    "list_api_keys",
    "looks_like_api_key",
    "revoke_api_key",
]

KEY_PREFIX = "cos_"
_DEFAULT_SCOPES = ("read", "write")
LAST_USED_RESOLUTION = timedelta(minutes=1)  # avoid a write per request


def looks_like_api_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX) and value.count("_") >= 2


async def create_api_key(
    session: AsyncSession,
    *,
    principal: Principal,
    name: str,
    scopes: Sequence[str] | None,
    expires_in_days: int | None,
    client: ClientInfo,
) -> tuple[ApiKey, str]:
    """Create a key for the principal's user; returns the row and the secret (once)."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise BadUserInput("name must be 1 to 100 characters", field="name")
    wanted = tuple(dict.fromkeys(scopes)) if scopes else _DEFAULT_SCOPES
    unknown = [s for s in wanted if s not in API_KEY_SCOPES]
    if unknown:
        raise BadUserInput(
            f"unknown scopes {unknown}; choose from {list(API_KEY_SCOPES)}", field="scopes"
        )
    if "admin" in wanted and not principal.is_admin:
        raise BadUserInput("only admins can create keys with the admin scope", field="scopes")
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise BadUserInput("expiresInDays must be between 1 and 3650", field="expiresInDays")
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        user_id=principal.user_id,
        name=name,
        prefix=prefix,
        key_hash=hash_secret(secret),
        scopes=list(wanted),
        expires_at=(
            datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
        ),
    )
    session.add(key)
    await session.flush()
    record_event(
        session,
        kind=AuditKind.API_KEY_CREATED,
        success=True,
        client=client,
        user_id=principal.user_id,
        keyId=str(key.id),
        scopes=list(wanted),
    )
    await session.commit()
    return key, secret


async def authenticate_api_key(session: AsyncSession, *, secret: str) -> tuple[User, ApiKey]:
    prefix = secret[len(KEY_PREFIX) :].split("_", 1)[0]
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not hmac.compare_digest(key.key_hash, hash_secret(secret)):
        raise Unauthenticated("invalid API key", reason="API_KEY_INVALID")
    now = datetime.now(UTC)
    if key.revoked_at is not None:
        raise Unauthenticated("API key revoked", reason="API_KEY_REVOKED")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthenticated("API key expired", reason="API_KEY_EXPIRED")
    user = await session.get(User, key.user_id)
    if user is None or user.status is not UserStatus.ACTIVE:
        raise Unauthenticated("the API key's account is not active", reason="ACCOUNT_INACTIVE")
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        await session.commit()
    return user, key


async def list_api_keys(session: AsyncSession, *, user_id: uuid.UUID) -> Sequence[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc())
    return (await session.scalars(stmt)).all()


async def revoke_api_key(
    session: AsyncSession, *, principal: Principal, key_id: uuid.UUID, client: ClientInfo
) -> ApiKey:
    """Revoke one of the principal's keys (admins: anyone's); commits."""
    key = await session.get(ApiKey, key_id)
    if key is None or (key.user_id != principal.user_id and not principal.is_admin):
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        record_event(
            session,
            kind=AuditKind.API_KEY_REVOKED,
            success=True,
            client=client,
            user_id=key.user_id,
            keyId=str(key.id),
        )
        await session.commit()
    return key


def key_principal(user: User, key: ApiKey) -> Principal:
    """Who a request authenticated by ``key`` acts as: its owner, within its scopes."""
    return Principal(
        user_id=user.id,
        role=user.role,
        api_key_id=key.id,
        scopes=frozenset(key.scopes),
        expires_at=key.expires_at,
    )
