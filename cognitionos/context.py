"""Per-request Context handed to every resolver.

It carries factories and identity, never an open DB session: strawberry resolves
sibling fields concurrently, so each resolver opens its own short session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cognitionos.services.auth import (
    AccountPolicy,
    ClientInfo,
    CredentialCache,
    Principal,
    TokenPolicy,
)
from cognitionos.services.errors import Unauthenticated

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from starlette.requests import HTTPConnection

    from cognitionos.config import Settings
    from cognitionos.dataloaders import Loaders
    from cognitionos.db.models.auth import User
    from cognitionos.observability import Metrics
    from cognitionos.pubsub import PubSubHub
    from cognitionos.services.agents import AgentService
    from cognitionos.services.llm import Router
    from cognitionos.services.memory import MemoryService
    from cognitionos.services.ratelimit import RateLimiter
    from cognitionos.services.templating import TemplateRenderer
    from cognitionos.services.workflows import Engine
    from cognitionos.services.workflows.snapshots import ExecutionSnapshots

__all__ = ["Context", "Services"]


@dataclass
class Services:
    """The clients born in the app lifespan, shared by every request."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    # Sessions without a transaction (autocommit): for one-statement reads, which then
    # cost one round trip instead of three (BEGIN, the read, ROLLBACK).
    reader: async_sessionmaker[AsyncSession]
    redis: Redis
    rate_limiter: RateLimiter
    metrics: Metrics
    workflow_engine: Engine
    pubsub: PubSubHub
    llm: Router
    memory: MemoryService
    agents: AgentService
    # The render processes of the templates requests render (notification templates).
    renderer: TemplateRenderer
    # Who HTTP credentials are, between requests (see services/auth/cache.py).
    credentials: CredentialCache
    # The rows every subscriber of an execution reads (bounded; closed with the app).
    snapshots: ExecutionSnapshots

    @property
    def account_policy(self) -> AccountPolicy:
        s = self.settings
        return AccountPolicy(
            bcrypt_rounds=s.bcrypt_rounds,
            password_min_length=s.password_min_length,
            lockout_threshold=s.lockout_threshold,
            lockout_seconds=s.lockout_seconds,
        )

    @property
    def token_policy(self) -> TokenPolicy:
        s = self.settings
        return TokenPolicy(
            secret=s.jwt_secret,
            issuer=s.jwt_issuer,
            access_ttl_seconds=s.access_token_ttl_seconds,
            refresh_ttl_seconds=s.refresh_token_ttl_seconds,
        )


@dataclass
class Context:
    services: Services
    request: HTTPConnection
    request_id: str
    client: ClientInfo
    loaders: Loaders
    principal: Principal | None = None
    # The principal's user row as this request's authentication found it, current as of
    # this request (HTTP only: a websocket's context outlives its reads, so resolvers read
    # again there). Shared with other requests: never modify it.
    user: User | None = None
    # Set by the error extension when execution started (vs. a request error).
    executed: bool = field(default=False)
    # The websocket's connection_init payload (strawberry fills it in).
    connection_params: dict[str, Any] | None = None
    # Metric labels, filled in from the parsed document (schema names only, never the
    # client's operationName: see schema/labels.py).
    operation_type: str = "unknown"
    operation_label: str = "other"

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def session(self) -> AsyncSession:
        """A new short-lived session: use as ``async with ctx.session() as s``."""
        return self.services.sessionmaker()

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise Unauthenticated("authentication required: send Authorization: Bearer <token>")
        return self.principal
