"""Auth rules without GraphQL: policy, principals, tokens, cursors, rate limits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from cognitionos.db.models.auth import Role
from cognitionos.services.auth import Principal
from cognitionos.services.auth.passwords import check_password_policy
from cognitionos.services.auth.tokens import decode_access_token, issue_access_token
from cognitionos.services.errors import BadUserInput, Forbidden, RateLimited, Unauthenticated
from cognitionos.services.pagination import decode_cursor, encode_cursor
from cognitionos.services.ratelimit import RateLimiter
from tests.conftest import Stack


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short1", "at least 10 characters"),
        ("onlyletterslong", "letters and digits or symbols"),
        ("1234567890123", "letters and digits or symbols"),
        ("x1" * 40, "at most 72 bytes"),
        ("me@example.com1", None),
    ],
)
def test_password_policy(password: str, problem: str | None) -> None:
    if problem is None:
        check_password_policy(password, min_length=10, email="me@example.com")
        return
    with pytest.raises(BadUserInput, match=problem) as caught:
        check_password_policy(password, min_length=10)
    assert caught.value.field == "password"


def test_password_may_not_be_the_email() -> None:
    with pytest.raises(BadUserInput, match="other than the email"):
        check_password_policy("Me@Example.com", min_length=10, email="me@example.com")


def test_api_key_scopes_cap_the_owner_role() -> None:
    user = uuid.uuid4()
    admin_read = Principal(user, Role.ADMIN, api_key_id=uuid.uuid4(), scopes=frozenset({"read"}))
    assert admin_read.effective_role is Role.VIEWER
    with pytest.raises(Forbidden, match="through this API key's scopes"):
        admin_read.require(Role.MEMBER)
    member_admin_scope = Principal(user, Role.MEMBER, uuid.uuid4(), frozenset({"admin"}))
    assert member_admin_scope.effective_role is Role.MEMBER  # never above the owner
    assert Principal(user, Role.ADMIN).is_admin


def test_access_token_round_trip_and_wrong_issuer() -> None:
    user = uuid.uuid4()
    secret = "s" * 40
    token = issue_access_token(
        user_id=user, role=Role.MEMBER, secret=secret, issuer="a", ttl_seconds=60
    )
    claims = decode_access_token(token, secret=secret, issuer="a")
    assert claims.user_id == user and claims.role is Role.MEMBER
    with pytest.raises(Unauthenticated, match="invalid access token"):
        decode_access_token(token, secret=secret, issuer="b")


def test_cursor_round_trip_and_garbage() -> None:
    at, id_ = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(at, id_)) == (at, id_)
    with pytest.raises(BadUserInput) as caught:
        decode_cursor("bm90IGEgY3Vyc29y")
    assert caught.value.field == "after"


async def test_rate_limiter_counts_per_key_in_redis(stack: Stack) -> None:
    redis = Redis.from_url(stack.redis.url)
    try:
        limiter = RateLimiter(redis)
        for _ in range(3):
            await limiter.check("k1", limit=3, window_seconds=60, what="things")
        with pytest.raises(RateLimited, match="too many things") as caught:
            await limiter.check("k1", limit=3, window_seconds=60, what="things")
        assert 0 < caught.value.retry_after <= 60
        await limiter.check("k2", limit=3, window_seconds=60, what="things")  # separate key
        assert await redis.pttl("cognitionos:rl:k1") > 0  # windows expire on their own
    finally:
        await redis.aclose()
