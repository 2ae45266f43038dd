"""Auth resolvers: authorize, call the service, map to schema types."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import strawberry
from redis.exceptions import RedisError
from strawberry import Info

from cognitionos.context import Context
from cognitionos.observability import get_logger
from cognitionos.schema.auth import (
    ApiKey,
    ApiKeyCreated,
    AuditEvent,
    AuditEventConnection,
    AuthPayload,
    RegisterInput,
    Role,
    UpdateUserInput,
    User,
    UserConnection,
    UserStatus,
)
from cognitionos.schema.common import connection_from_page, parse_id
from cognitionos.schema.permissions import IsAdmin, IsAuthenticated, IsUserSession
from cognitionos.services import auth
from cognitionos.services.errors import BadUserInput, Forbidden, Unauthenticated
from cognitionos.services.events import publish_credential_changes, stamp_users

__all__ = ["AuthMutation", "AuthQuery"]

log = get_logger("cognitionos.auth")


async def _announce(ctx: Context, changes: Iterable[auth.CredentialChange]) -> None:
    """After commit: every replica re-checks the websockets these changes touch. The change
    itself is committed, so a Redis failure is logged, not raised; such sockets are still
    refused at their next operation or when their token expires."""
    try:
        await publish_credential_changes(ctx.services.redis, changes)
    except (RedisError, OSError) as exc:
        log.warning("announcing credential changes failed", error=str(exc))


async def _stamp(ctx: Context, user_ids: list[uuid.UUID]) -> None:
    """After commit of a user row no connection must re-check: its next request reads it."""
    try:
        await stamp_users(ctx.services.redis, user_ids)
    except (RedisError, OSError) as exc:
        log.warning("stamping changed users failed", error=str(exc))


async def _limit_login(ctx: Context, email: str) -> None:
    s = ctx.settings
    limiter = ctx.services.rate_limiter
    window = s.rate_limit_window_seconds
    await limiter.check(
        f"login:ip:{ctx.client.ip}",
        limit=s.login_rate_limit_per_ip,
        window_seconds=window,
        what="login attempts from this address",
    )
    await limiter.check(
        f"login:account:{email.strip().lower()}",
        limit=s.login_rate_limit_per_account,
        window_seconds=window,
        what="login attempts for this account",
    )


@strawberry.type
class AuthQuery:
    @strawberry.field(description="The authenticated user, or null when anonymous.")
    async def me(self, info: Info[Context, None]) -> User | None:
        ctx = info.context
        if ctx.principal is None:
            return None
        user = ctx.user  # read by this request's authentication, so never stale
        if user is None or user.id != ctx.principal.user_id:
            async with ctx.session() as session:
                user = await auth.get_user(session, ctx.principal.user_id)
        return User.from_model(user) if user else None

    @strawberry.field(permission_classes=[IsAdmin], description="All users (admin).")
    async def users(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        role: Role | None = None,
        status: UserStatus | None = None,
    ) -> UserConnection:
        async with info.context.session() as session:
            page = await auth.list_users(
                session, first=first, after=after, role=role, status=status
            )
        return connection_from_page(page, User.from_model)

    @strawberry.field(permission_classes=[IsAuthenticated], description="Your API keys.")
    async def api_keys(self, info: Info[Context, None]) -> list[ApiKey]:
        principal = info.context.require_principal()
        async with info.context.session() as session:
            keys = await auth.list_api_keys(session, user_id=principal.user_id)
        return [ApiKey.from_model(k) for k in keys]

    @strawberry.field(permission_classes=[IsAdmin], description="Auth events (admin).")
    async def audit_log(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        user_id: strawberry.ID | None = None,
        event: str | None = None,
    ) -> AuditEventConnection:
        async with info.context.session() as session:
            page = await auth.list_audit_events(
                session,
                first=first,
                after=after,
                user_id=parse_id(user_id, "userId") if user_id else None,
                kind=event,
            )
        return connection_from_page(page, AuditEvent.from_model)


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Create an account (MEMBER) and log in.")
    async def register(self, info: Info[Context, None], input: RegisterInput) -> AuthPayload:
        ctx = info.context
        if not ctx.settings.allow_registration:
            raise Forbidden("self-registration is disabled; ask an admin for an account")
        await ctx.services.rate_limiter.check(
            f"register:ip:{ctx.client.ip}",
            limit=ctx.settings.login_rate_limit_per_ip,
            window_seconds=ctx.settings.rate_limit_window_seconds,
            what="registrations",
        )
        async with ctx.session() as session:
            user = await auth.create_user(
                session,
                policy=ctx.services.account_policy,
                email=input.email,
                password=input.password,
                full_name=input.full_name,
                client=ctx.client,
                kind=auth.AuditKind.REGISTER,
            )
            pair = await auth.start_session(session, policy=ctx.services.token_policy, user=user)
        ctx.services.metrics.auth_results.labels("register", "success").inc()
        return AuthPayload.from_pair(pair)

    @strawberry.mutation(description="Exchange email and password for tokens.")
    async def login(self, info: Info[Context, None], email: str, password: str) -> AuthPayload:
        ctx = info.context
        await _limit_login(ctx, email)
        metric = ctx.services.metrics.auth_results
        written: list[uuid.UUID] = []
        try:
            async with ctx.session() as session:
                try:
                    user = await auth.authenticate(
                        session,
                        policy=ctx.services.account_policy,
                        email=email,
                        password=password,
                        client=ctx.client,
                        changed=written,
                    )
                except Unauthenticated as exc:
                    metric.labels("password", str(exc.extensions.get("reason", "failure"))).inc()
                    raise
                pair = await auth.start_session(
                    session, policy=ctx.services.token_policy, user=user
                )
        finally:  # `me` shows lastLoginAt and lockedUntil: the next request reads them
            await _stamp(ctx, written)
        metric.labels("password", "success").inc()
        return AuthPayload.from_pair(pair)

    @strawberry.mutation(description="Rotate a refresh token; reusing an old one revokes all.")
    async def refresh_token(self, info: Info[Context, None], refresh_token: str) -> AuthPayload:
        ctx = info.context
        changed: list[auth.CredentialChange] = []
        try:
            async with ctx.session() as session:
                pair = await auth.rotate_refresh_token(
                    session,
                    policy=ctx.services.token_policy,
                    refresh_token=refresh_token,
                    client=ctx.client,
                    changed=changed,
                )
        finally:  # reuse detection revokes the login, then refuses
            await _announce(ctx, changed)
        return AuthPayload.from_pair(pair)

    @strawberry.mutation(description="Revoke this login's refresh tokens.")
    async def logout(self, info: Info[Context, None], refresh_token: str) -> bool:
        ctx = info.context
        changed: list[auth.CredentialChange] = []
        async with ctx.session() as session:
            found = await auth.revoke_session(
                session, refresh_token=refresh_token, client=ctx.client, changed=changed
            )
        await _announce(ctx, changed)
        return found

    @strawberry.mutation(
        permission_classes=[IsUserSession],
        description="Create an API key; its secret is in the answer and never again.",
    )
    async def create_api_key(
        self,
        info: Info[Context, None],
        name: str,
        scopes: list[str] | None = None,
        expires_in_days: int | None = None,
    ) -> ApiKeyCreated:
        ctx = info.context
        async with ctx.session() as session:
            key, secret = await auth.create_api_key(
                session,
                principal=ctx.require_principal(),
                name=name,
                scopes=scopes,
                expires_in_days=expires_in_days,
                client=ctx.client,
            )
        return ApiKeyCreated(api_key=ApiKey.from_model(key), secret=secret)

    @strawberry.mutation(permission_classes=[IsUserSession], description="Revoke an API key.")
    async def revoke_api_key(self, info: Info[Context, None], id: strawberry.ID) -> ApiKey:
        ctx = info.context
        async with ctx.session() as session:
            key = await auth.revoke_api_key(
                session,
                principal=ctx.require_principal(),
                key_id=parse_id(id, "id"),
                client=ctx.client,
            )
        await _announce(ctx, [auth.CredentialChange(user_id=key.user_id, api_key_id=key.id)])
        return ApiKey.from_model(key)

    @strawberry.mutation(permission_classes=[IsAdmin], description="Change a user's role/status.")
    async def update_user(self, info: Info[Context, None], input: UpdateUserInput) -> User:
        ctx = info.context
        if input.role is None and input.status is None:
            raise BadUserInput("give a role or a status to change", field="input")
        async with ctx.session() as session:
            user = await auth.update_user(
                session,
                actor_id=ctx.require_principal().user_id,
                user_id=parse_id(input.user_id, "userId"),
                role=input.role,
                status=input.status,
                client=ctx.client,
            )
        await _announce(ctx, [auth.CredentialChange(user_id=user.id)])
        return User.from_model(user)
