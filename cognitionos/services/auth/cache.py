"""Who a credential is, remembered between the HTTP requests of one process.

Authenticating reads the user's row (and the API key's) on every request, so that a
demotion, a suspension or a revoked key applies at once. This cache keeps those rows
without giving that up: an entry is used only while the user's *stamp* in Redis is the
one it was read under. Every change to a user's standing sets a new random stamp after
commit (``services.events.publish_credential_changes``), and each request reads the stamps
in the Redis round trip it makes anyway for its rate limit, before it reads the database.
So the next request after a change, in any replica, reads the rows again. Entries are
also dropped after ``max_age`` seconds: the bound when Redis lost a stamp (flushed or
restarted as the change was made) or a row was edited outside the API.

Verified access tokens are kept too (a JWT is immutable; its expiry is checked on every
use), so the HMAC and the claims are checked once per token and process.

An access token names its login (``sid``, the refresh-token family). Under each stamp the
first request of a login checks that the login is still live, so after a logout or a
refresh-token reuse (which set a new stamp) the login's access tokens are refused at the
next request, in every replica, as its websockets are closed.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.db.models.auth import ApiKey, User, UserStatus
from cognitionos.services.auth.api_keys import (
    LAST_USED_RESOLUTION,
    authenticate_api_key,
    key_principal,
    looks_like_api_key,
)
from cognitionos.services.auth.changes import ALL_USERS_STAMP, stamp_key
from cognitionos.services.auth.principal import Principal
from cognitionos.services.auth.sessions import TokenPolicy, login_is_live
from cognitionos.services.auth.tokens import AccessClaims, decode_access_token, hash_secret
from cognitionos.services.errors import Unauthenticated

__all__ = ["CredentialCache", "ReadStamps"]

# Count the request (rate limit) for this user and return the values of these stamp keys,
# in one round trip; may raise (e.g. rate limited).
ReadStamps = Callable[[uuid.UUID, Sequence[str]], Awaitable[Sequence[bytes | None]]]

K = TypeVar("K")
V = TypeVar("V")


class _Bounded(Generic[K, V]):
    """A dict that forgets its least recently used entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        if self._size <= 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def drop_where(self, doomed: Callable[[V], bool]) -> None:
        for key in [k for k, v in self._items.items() if doomed(v)]:
            del self._items[key]

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_LOGIN_LIVE = select(login_is_live())  # the login's family: bound as "family"
_LOGINS_PER_USER = 64  # beyond this a login is checked on each request (still correct)


@dataclass(frozen=True)
class _Standing:
    """A user's row (and for an API key, the key's row) as read under ``stamps``."""

    user: User
    stamps: tuple[bytes | None, ...]
    read_at: float
    key: ApiKey | None = None
    # Logins (refresh-token families) found live under these stamps; a user has few.
    logins: set[uuid.UUID] = field(default_factory=set)


class CredentialCache:
    """Per process, born in the app lifespan; ``max_age`` 0 reads the database every time."""

    def __init__(
        self,
        reader: async_sessionmaker[AsyncSession],
        policy: TokenPolicy,
        *,
        max_age: float,
        size: int,
    ) -> None:
        self._reader = reader
        self._policy = policy
        self._max_age = max_age
        self._tokens: _Bounded[str, AccessClaims] = _Bounded(size)
        # An API key's owner never changes: learnt once, it lets the stamps be read first.
        self._key_owners: _Bounded[str, uuid.UUID] = _Bounded(size)
        self._users: _Bounded[uuid.UUID, _Standing] = _Bounded(size if max_age > 0 else 0)
        self._keys: _Bounded[str, _Standing] = _Bounded(size if max_age > 0 else 0)

    def forget(self, user_id: uuid.UUID) -> None:
        """Drop what is known of this user's standing (an announced change)."""
        self._users.pop(user_id)
        # Rare, and few keys per process: a scan rather than an index kept in step.
        self._keys.drop_where(lambda standing: standing.user.id == user_id)

    def clear(self) -> None:
        """Drop every standing (announcements may have been missed)."""
        self._users.clear()
        self._keys.clear()

    async def identify(self, credential: str, *, read_stamps: ReadStamps) -> tuple[Principal, User]:
        """The credential's principal and user row; ``read_stamps`` is called exactly once,
        after the credential itself was verified. Raises Unauthenticated."""
        if looks_like_api_key(credential):
            return await self._api_key(credential, read_stamps)
        claims = self._claims(credential)
        stamps = await self._stamps(claims.user_id, read_stamps)
        standing = self._users.get(claims.user_id)
        if standing is None or not self._fresh(standing, stamps):
            async with self._reader() as session:
                user = await session.get(User, claims.user_id)
            if user is None:
                raise Unauthenticated(
                    "the token's account is not active", reason="ACCOUNT_INACTIVE"
                )
            standing = _Standing(user=user, stamps=stamps, read_at=time.monotonic())
            self._users.put(user.id, standing)
        user = standing.user
        if user.status is not UserStatus.ACTIVE:
            raise Unauthenticated("the token's account is not active", reason="ACCOUNT_INACTIVE")
        if claims.session_id is not None and claims.session_id not in standing.logins:
            async with self._reader() as session:
                live = await session.scalar(_LOGIN_LIVE, {"family": claims.session_id})
            if not live:
                raise Unauthenticated(
                    "the token's login has ended; log in again", reason="SESSION_ENDED"
                )
            if len(standing.logins) < _LOGINS_PER_USER:
                standing.logins.add(claims.session_id)
        principal = Principal(
            user_id=user.id,
            role=user.role,
            session_id=claims.session_id,
            expires_at=claims.expires_at,
        )
        return principal, user

    def _claims(self, token: str) -> AccessClaims:
        claims = self._tokens.get(token)
        if claims is None:
            claims = decode_access_token(
                token, secret=self._policy.secret, issuer=self._policy.issuer
            )
            self._tokens.put(token, claims)
        elif claims.expires_at.timestamp() <= time.time():  # as PyJWT decides it
            self._tokens.pop(token)
            raise Unauthenticated("access token expired; refresh it", reason="TOKEN_EXPIRED")
        return claims

    async def _stamps(
        self, user_id: uuid.UUID, read_stamps: ReadStamps
    ) -> tuple[bytes | None, ...]:
        keys = (stamp_key(user_id), ALL_USERS_STAMP) if self._max_age > 0 else ()
        return tuple(await read_stamps(user_id, keys))

    def _fresh(self, standing: _Standing, stamps: tuple[bytes | None, ...]) -> bool:
        return standing.stamps == stamps and time.monotonic() - standing.read_at < self._max_age

    async def _api_key(self, secret: str, read_stamps: ReadStamps) -> tuple[Principal, User]:
        digest = hash_secret(secret)
        owner = self._key_owners.get(digest)
        if owner is None:
            # Never seen here: authenticate from the database first (an unknown key is
            # refused before it counts against anyone), then count the request. Not kept:
            # its stamps were read after the rows.
            user, key = await self._read_key(secret)
            self._key_owners.put(digest, user.id)
            await self._stamps(user.id, read_stamps)
            return key_principal(user, key), user
        stamps = await self._stamps(owner, read_stamps)
        standing = self._keys.get(digest)
        now = datetime.now(UTC)
        if (
            standing is None
            or standing.key is None
            or not self._fresh(standing, stamps)
            # Due for its last-used write: the database path does it.
            or standing.key.last_used_at is None
            or now - standing.key.last_used_at > LAST_USED_RESOLUTION
        ):
            user, key = await self._read_key(secret)
            standing = _Standing(user=user, key=key, stamps=stamps, read_at=time.monotonic())
            self._keys.put(digest, standing)
        assert standing.key is not None
        if standing.key.expires_at is not None and standing.key.expires_at <= now:
            raise Unauthenticated("API key expired", reason="API_KEY_EXPIRED")
        return key_principal(standing.user, standing.key), standing.user

    async def _read_key(self, secret: str) -> tuple[User, ApiKey]:
        async with self._reader() as session:
            return await authenticate_api_key(session, secret=secret)
