"""Access JWTs (HS256, short-lived) and opaque refresh/API-key secrets."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from cognitionos.db.models.auth import Role
from cognitionos.services.errors import Unauthenticated

__all__ = ["AccessClaims", "decode_access_token", "hash_secret", "issue_access_token", "new_secret"]

ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    role: Role
    expires_at: datetime
    session_id: uuid.UUID | None = None  # the login (refresh-token family) it came from


def issue_access_token(
    *,
    user_id: uuid.UUID,
    role: Role,
    secret: str,
    issuer: str,
    ttl_seconds: int,
    session_id: uuid.UUID | None = None,
) -> str:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": str(user_id),
        "role": role.value,
        "typ": "access",
        "iss": issuer,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "jti": secrets.token_hex(8),
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(token: str, *, secret: str, issuer: str) -> AccessClaims:
    """Verify signature, algorithm (HS256 only: never ``none``), expiry and issuer."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("access token expired; refresh it", reason="TOKEN_EXPIRED") from None
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"invalid access token: {exc}", reason="TOKEN_INVALID") from None
    if claims.get("typ") != "access":
        raise Unauthenticated("not an access token", reason="TOKEN_INVALID")
    try:
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            role=Role(claims["role"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            session_id=uuid.UUID(claims["sid"]) if claims.get("sid") else None,
        )
    except (KeyError, ValueError):
        raise Unauthenticated("invalid access token claims", reason="TOKEN_INVALID") from None


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_secret(value: str) -> str:
    """Secrets are high-entropy, so a fast SHA-256 is the right hash (no bcrypt needed)."""
    return hashlib.sha256(value.encode()).hexdigest()
