"""Turn a request's credential (access JWT or API key) into a Principal."""

from __future__ import annotations

from sqlalchemy import bindparam, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.auth import User, UserStatus
from cognitionos.services.auth.api_keys import (
    authenticate_api_key,
    key_principal,
    looks_like_api_key,
)
from cognitionos.services.auth.principal import Principal
from cognitionos.services.auth.sessions import TokenPolicy, login_is_live
from cognitionos.services.auth.tokens import decode_access_token
from cognitionos.services.errors import Unauthenticated

__all__ = ["credential_from_headers", "identify"]


def credential_from_headers(authorization: str | None, api_key: str | None) -> str | None:
    """``Authorization: Bearer <jwt|api key>`` or ``X-API-Key: <api key>``."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated(
                "Authorization header must be 'Bearer <token>'", reason="BAD_AUTH_HEADER"
            )
        return value.strip()
    if api_key:
        return api_key.strip()
    return None


# A user's standing, and whether a login (refresh-token family) is live: built once.
_STANDING = select(User.role, User.status, true().label("live")).where(User.id == bindparam("user"))
_STANDING_IN_SESSION = select(
    User.role,
    User.status,
    login_is_live().label("live"),
).where(User.id == bindparam("user"))


async def identify(
    session: AsyncSession, *, credential: str, policy: TokenPolicy, check_session: bool = False
) -> Principal:
    """Verify the credential and read the user: their current role and status count.

    An access token is self-contained until it expires; with ``check_session`` (long-lived
    connections) it is also refused once its login was ended (logout, refresh reuse).
    For an access token this is one statement and no ORM row (a websocket checks again
    on every operation)."""
    if looks_like_api_key(credential):
        user, key = await authenticate_api_key(session, secret=credential)
        return key_principal(user, key)
    claims = decode_access_token(credential, secret=policy.secret, issuer=policy.issuer)
    if check_session and claims.session_id is not None:
        result = await session.execute(
            _STANDING_IN_SESSION, {"user": claims.user_id, "family": claims.session_id}
        )
    else:
        result = await session.execute(_STANDING, {"user": claims.user_id})
    found = result.one_or_none()
    if found is None or found.status is not UserStatus.ACTIVE:
        raise Unauthenticated("the token's account is not active", reason="ACCOUNT_INACTIVE")
    if not found.live:
        raise Unauthenticated("the token's login has ended; log in again", reason="SESSION_ENDED")
    return Principal(
        user_id=claims.user_id,
        role=found.role,
        session_id=claims.session_id,
        expires_at=claims.expires_at,
    )
