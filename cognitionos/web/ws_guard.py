"""Websockets held to the rules HTTP requests follow.

An HTTP request is authenticated, rate limited and size-capped each time; a websocket
lives for hours. The guard admits a socket on its ``connection_init`` credential and one
of its user's connection slots (counted across replicas in Redis), then checks the
credential again before every operation, when it expires, and whenever any replica
announces a change for its user on ``cognitionos:credentials`` (a revoked API key, a
logout, a suspension, a role change) or the pub/sub connection comes back (a change may
have been missed). A credential no longer valid, or a lower role than the socket was
granted, closes the socket with 4403: its running subscriptions were authorized under
rights the user no longer has.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError, GraphQLFormattedError
from redis.exceptions import RedisError

from cognitionos.context import Context, Services
from cognitionos.dataloaders import Loaders
from cognitionos.observability import bind_request, get_logger
from cognitionos.pubsub import RESYNC, SlowSubscriber
from cognitionos.schema.errors import INTERNAL_ERROR_MESSAGE
from cognitionos.services.auth import (
    CredentialChange,
    Principal,
    credential_from_headers,
    identify,
    role_at_least,
)
from cognitionos.services.errors import CognitionError, RateLimited, Unauthenticated
from cognitionos.services.slots import Slots
from cognitionos.subscriptions.channels import credentials_channel

__all__ = [
    "FORBIDDEN",
    "MESSAGE_TOO_BIG",
    "TOO_MANY_CONNECTIONS",
    "GuardedSocket",
    "OperationCheck",
    "Refused",
    "SocketGuard",
]

log = get_logger("cognitionos.ws")

FORBIDDEN = 4403  # graphql-transport-ws's own code for refused credentials
TOO_MANY_CONNECTIONS = 4429
MESSAGE_TOO_BIG = 1009  # the WebSocket protocol's code, as uvicorn's frame limit sends it
_EXPIRY_SLACK_SECONDS = 0.05  # JWT expiry has one-second resolution; check just after it


class Refused(Exception):
    """A connection refused at ``connection_init``, with the close code to send."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(eq=False)
class GuardedSocket:
    """One admitted socket: its context, the credential it presented and how to close it."""

    context: Context
    credential: str
    close: Callable[[int, str], Awaitable[None]]
    slot: str = field(default_factory=lambda: uuid.uuid4().hex)
    closing: bool = False
    expiry: asyncio.TimerHandle | None = None

    @property
    def principal(self) -> Principal:
        assert self.context.principal is not None
        return self.context.principal


@dataclass(frozen=True)
class OperationCheck:
    """Whether an operation may run: ``error`` answers it instead; ``closed``: the socket
    was closed (its credential is no longer valid)."""

    error: GraphQLFormattedError | None = None
    closed: bool = False


class SocketGuard:
    """This replica's admitted sockets, by user; born with the websocket endpoint."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._slots = Slots(services.redis)
        self._sockets: dict[uuid.UUID, set[GuardedSocket]] = defaultdict(set)
        self._loops: list[asyncio.Task[None]] = []
        self._checks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._listen(), name="ws-credential-changes"),
            asyncio.create_task(self._renew_slots(), name="ws-connection-slots"),
        ]

    async def stop(self) -> None:
        tasks = [*self._loops, *self._checks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        for sockets in self._sockets.values():
            for socket in sockets:
                _cancel_expiry(socket)

    # -- admission -------------------------------------------------------------------

    async def admit(
        self, context: Context, close: Callable[[int, str], Awaitable[None]]
    ) -> GuardedSocket:
        """Authenticate ``connection_init``'s credential and take one of the user's
        connection slots; raises Refused."""
        metrics = self._services.metrics
        try:
            credential = _credential(context.connection_params or {})
            principal = await self._identify(credential)
        except Unauthenticated as exc:
            metrics.auth_results.labels("websocket", "rejected").inc()
            log.info("websocket rejected", reason=exc.message)
            raise Refused(FORBIDDEN, "Forbidden") from None
        socket = GuardedSocket(context=context, credential=credential, close=close)
        limit = self._services.settings.ws_max_connections_per_user
        try:
            taken = await self._slots.acquire(str(principal.user_id), socket.slot, limit=limit)
        except (RedisError, OSError) as exc:
            # The cap guards resources, not identity: without Redis it is not enforced
            # (the slot is written with the next renewal).
            log.warning("websocket connection cap not checked", error=str(exc))
            taken = True
        if not taken:
            log.info("websocket refused: connection cap", user_id=str(principal.user_id))
            raise Refused(TOO_MANY_CONNECTIONS, f"Too many connections (at most {limit} per user)")
        metrics.auth_results.labels("websocket", "success").inc()
        self._adopt(socket, principal)
        self._sockets[principal.user_id].add(socket)
        bind_request(user_id=str(principal.user_id))
        return socket

    async def release(self, socket: GuardedSocket) -> None:
        """The socket is gone: forget it and free its slot."""
        _cancel_expiry(socket)
        if socket.context.principal is not None:
            user_id = socket.principal.user_id
            sockets = self._sockets.get(user_id)
            if sockets is not None:
                sockets.discard(socket)
                if not sockets:
                    del self._sockets[user_id]
            with contextlib.suppress(RedisError, OSError):
                await self._slots.release(str(user_id), socket.slot)

    # -- checks ------------------------------------------------------------------------

    async def check_operation(self, socket: GuardedSocket) -> OperationCheck:
        """Before a ``subscribe``/``start``: the credential again, then the user's GraphQL
        rate limit (shared with HTTP)."""
        try:
            if not await self.recheck(socket):
                return OperationCheck(closed=True)
            limited = await self._rate_limit(socket.principal)
        except Exception:
            log.exception("checking a websocket operation failed")
            return OperationCheck(error=_format(None, socket.context.request_id))
        if limited is not None:
            self._services.metrics.graphql_errors.labels(limited.code).inc()
            return OperationCheck(error=_format(limited, socket.context.request_id))
        return OperationCheck()

    async def recheck(self, socket: GuardedSocket) -> bool:
        """Identify the socket's credential again and refresh its principal. False, with
        the socket closed (4403), when the credential is no longer valid or the user's
        role is now lower than the one the socket was granted."""
        if socket.closing:
            return False
        try:
            principal = await self._identify(socket.credential)
        except Unauthenticated as exc:
            reason = str(exc.extensions.get("reason", exc.code))
        else:
            if role_at_least(principal.effective_role, socket.principal.effective_role):
                self._adopt(socket, principal)
                return True
            reason = "ROLE_CHANGED"
        if not socket.closing:
            socket.closing = True
            _cancel_expiry(socket)
            log.info(
                "websocket closed: credentials changed",
                user_id=str(socket.principal.user_id),
                reason=reason,
            )
            await socket.close(FORBIDDEN, f"Forbidden: {reason}")
        return False

    async def _identify(self, credential: str) -> Principal:
        # Reads only: autocommit, no BEGIN/ROLLBACK round trips (as HTTP requests do).
        async with self._services.reader() as session:
            return await identify(
                session,
                credential=credential,
                policy=self._services.token_policy,
                check_session=True,
            )

    async def _rate_limit(self, principal: Principal) -> RateLimited | None:
        """The same per-user limit as HTTP (``GraphQLHTTP._rate_limit``)."""
        settings = self._services.settings
        try:
            await self._services.rate_limiter.check(
                f"graphql:user:{principal.user_id}",
                limit=settings.graphql_rate_limit,
                window_seconds=settings.rate_limit_window_seconds,
                what="requests",
            )
        except RateLimited as exc:
            return exc
        return None

    def _adopt(self, socket: GuardedSocket, principal: Principal) -> None:
        """Make ``principal`` the socket's: new operations get its rights."""
        context = socket.context
        if principal != context.principal:
            context.principal = principal
            context.loaders = Loaders(self._services.sessionmaker, principal)
            _cancel_expiry(socket)
        if socket.expiry is None and principal.expires_at is not None:
            delay = (principal.expires_at - datetime.now(UTC)).total_seconds()
            socket.expiry = asyncio.get_running_loop().call_later(
                max(0.0, delay) + _EXPIRY_SLACK_SECONDS, self._expired, socket
            )

    def _expired(self, socket: GuardedSocket) -> None:
        socket.expiry = None
        self._spawn_rechecks([socket])

    # -- announcements from every replica ----------------------------------------------

    def _spawn_rechecks(self, sockets: Iterable[GuardedSocket]) -> None:
        for socket in sockets:
            task = asyncio.create_task(self._recheck_quietly(socket))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _recheck_quietly(self, socket: GuardedSocket) -> None:
        try:
            await self.recheck(socket)
        except Exception:
            # The database may be down; the socket's next operation checks again.
            log.warning("re-checking a websocket's credentials failed", exc_info=True)

    def _affected(self, message: Any) -> list[GuardedSocket]:
        if message is RESYNC:  # we may have missed announcements: check everyone
            return [s for sockets in self._sockets.values() for s in sockets]
        try:
            change = CredentialChange.from_message(message)
        except (KeyError, TypeError, ValueError):
            log.warning("dropping a malformed credentials message", message=str(message)[:200])
            return []
        return [s for s in self._sockets.get(change.user_id, ()) if change.matches(s.principal)]

    async def _listen(self) -> None:
        while True:
            try:
                async with self._services.pubsub.subscribe(credentials_channel()) as subscriber:
                    while True:
                        self._spawn_rechecks(self._affected(await subscriber.get()))
            except SlowSubscriber:
                log.warning("credential announcements fell behind; re-checking every socket")
                self._spawn_rechecks(self._affected(RESYNC))

    async def _renew_slots(self) -> None:
        while True:
            await asyncio.sleep(self._slots.lease_seconds / 3)
            held = [
                (str(user_id), socket.slot)
                for user_id, sockets in self._sockets.items()
                for socket in sockets
            ]
            try:
                await self._slots.renew(held)
            except (RedisError, OSError) as exc:
                log.warning("renewing websocket connection slots failed", error=str(exc))


def _credential(params: dict[str, Any]) -> str:
    authorization = params.get("authorization") or params.get("Authorization")
    api_key = params.get("apiKey") or params.get("x-api-key")
    credential = credential_from_headers(
        str(authorization) if authorization else None, str(api_key) if api_key else None
    )
    if credential is None:
        raise Unauthenticated("send credentials in the connection_init payload")
    return credential


def _cancel_expiry(socket: GuardedSocket) -> None:
    if socket.expiry is not None:
        socket.expiry.cancel()
        socket.expiry = None


def _format(error: CognitionError | None, request_id: str) -> GraphQLFormattedError:
    """An operation's error as GraphQL formats it; None: an unexpected failure, masked."""
    extensions = error.as_extensions() if error else {"code": "INTERNAL_SERVER_ERROR"}
    message = error.message if error else INTERNAL_ERROR_MESSAGE
    return GraphQLError(message, extensions={**extensions, "requestId": request_id}).formatted
