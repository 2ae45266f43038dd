"""Token pairs: access JWT + rotating refresh token with reuse detection.

Every refresh token belongs to a family (one login). Refreshing revokes the token
presented and issues its successor in the same family. Presenting a token that was
already exchanged means it leaked: the whole family is revoked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Exists, bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.auth import RefreshToken, User, UserStatus
from cognitionos.services.auth.audit import AuditKind, ClientInfo, record_event
from cognitionos.services.auth.changes import CredentialChange
from cognitionos.services.auth.tokens import hash_secret, issue_access_token, new_secret
from cognitionos.services.errors import Unauthenticated

__all__ = [
    "TokenPair",
    "TokenPolicy",
    "issue_tokens",
    "login_is_live",
    "revoke_session",
    "rotate_refresh_token",
    "start_session",
]


@dataclass(frozen=True)
class TokenPolicy:
    secret: str
    issuer: str = "cognitionos"
    access_ttl_seconds: int = 900
    refresh_ttl_seconds: int = 7 * 24 * 3600


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


async def issue_tokens(
    session: AsyncSession,
    *,
    policy: TokenPolicy,
    user: User,
    family_id: uuid.UUID | None = None,
) -> tuple[TokenPair, RefreshToken]:
    """Add a new refresh token row to the caller's transaction and sign an access token."""
    secret = new_secret()
    row = RefreshToken(
        id=uuid.uuid4(),
        user_id=user.id,
        token_hash=hash_secret(secret),
        family_id=family_id or uuid.uuid4(),
        expires_at=datetime.now(UTC) + timedelta(seconds=policy.refresh_ttl_seconds),
    )
    session.add(row)
    access = issue_access_token(
        user_id=user.id,
        role=user.role,
        secret=policy.secret,
        issuer=policy.issuer,
        ttl_seconds=policy.access_ttl_seconds,
        session_id=row.family_id,
    )
    return TokenPair(access, secret, policy.access_ttl_seconds, user), row


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def rotate_refresh_token(
    session: AsyncSession,
    *,
    policy: TokenPolicy,
    refresh_token: str,
    client: ClientInfo,
    changed: list[CredentialChange] | None = None,
) -> TokenPair:
    """Exchange a refresh token for a new pair; commits. A login revoked on the way (reuse,
    inactive account) is added to ``changed``, to be announced after the commit."""
    now = datetime.now(UTC)
    row = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == hash_secret(refresh_token))
        .with_for_update()
    )
    if row is None:
        raise Unauthenticated("unknown refresh token", reason="TOKEN_INVALID")
    if row.replaced_by_id is not None or row.revoked_at is not None:
        reused = row.replaced_by_id is not None
        if reused:
            await _revoke_family(session, row.family_id, now)
            _note(changed, row)
            record_event(
                session,
                kind=AuditKind.TOKEN_REUSE_DETECTED,
                success=False,
                client=client,
                user_id=row.user_id,
                family=str(row.family_id),
            )
            await session.commit()
            raise Unauthenticated(
                "refresh token reuse detected: every session of this login was revoked",
                reason="TOKEN_REUSED",
            )
        raise Unauthenticated("refresh token revoked", reason="TOKEN_REVOKED")
    if row.expires_at <= now:
        raise Unauthenticated("refresh token expired; log in again", reason="TOKEN_EXPIRED")
    user = await session.get(User, row.user_id)
    if user is None or user.status is not UserStatus.ACTIVE:
        await _revoke_family(session, row.family_id, now)
        _note(changed, row)
        await session.commit()
        raise Unauthenticated("account is not active", reason="ACCOUNT_INACTIVE")

    pair, successor = await issue_tokens(session, policy=policy, user=user, family_id=row.family_id)
    row.revoked_at = now
    row.replaced_by_id = successor.id
    record_event(
        session, kind=AuditKind.TOKEN_REFRESH, success=True, client=client, user_id=user.id
    )
    await session.commit()
    return pair


async def revoke_session(
    session: AsyncSession,
    *,
    refresh_token: str,
    client: ClientInfo,
    changed: list[CredentialChange] | None = None,
) -> bool:
    """Log out: revoke the refresh token's whole family (noted in ``changed``); commits.
    False if it was unknown."""
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_secret(refresh_token))
    )
    if row is None:
        return False
    await _revoke_family(session, row.family_id, datetime.now(UTC))
    _note(changed, row)
    record_event(session, kind=AuditKind.LOGOUT, success=True, client=client, user_id=row.user_id)
    await session.commit()
    return True


def _note(changed: list[CredentialChange] | None, row: RefreshToken) -> None:
    if changed is not None:
        changed.append(CredentialChange(user_id=row.user_id, session_id=row.family_id))


async def start_session(session: AsyncSession, *, policy: TokenPolicy, user: User) -> TokenPair:
    """A new login: a new refresh-token family and an access token; commits."""
    pair, _ = await issue_tokens(session, policy=policy, user=user)
    await session.commit()
    return pair


def login_is_live() -> Exists:
    """Whether the login (refresh-token family) bound as ``family`` is still live: not
    logged out, no refresh-token reuse. For the statements that decide a token's fate."""
    return exists().where(
        RefreshToken.family_id == bindparam("family"), RefreshToken.revoked_at.is_(None)
    )
