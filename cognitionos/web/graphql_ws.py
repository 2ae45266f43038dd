"""GraphQL over websockets (graphql-transport-ws and legacy graphql-ws) at ``/graphql``.

Strawberry's view speaks both protocols. We add: credentials in ``connection_init``
(``{"authorization": "Bearer …"}`` or ``{"apiKey": "…"}``), refused with the protocol's
forbidden close (4403), and held to account for the socket's whole life (``ws_guard``:
re-checked per operation and on every credential change, rate limited like HTTP, a
connection cap per user); messages over ``max_body_bytes`` refused (1009); server
keep-alive pings on graphql-transport-ws; every message sent counted by type; and a
Context per connection whose resolvers open their own sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from json import JSONDecodeError
from typing import Any, cast

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ErrorMessage as LegacyErrorMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage
from strawberry.types.execution import PreExecutionError

from cognitionos.context import Context, Services
from cognitionos.dataloaders import Loaders
from cognitionos.observability import get_logger
from cognitionos.schema.tracing import subscribe_span
from cognitionos.services.auth import ClientInfo
from cognitionos.subscriptions.multiplex import Multiplexer, SlowConsumer
from cognitionos.web.schema import CognitionSchema
from cognitionos.web.ws_guard import MESSAGE_TOO_BIG, GuardedSocket, Refused, SocketGuard

__all__ = ["GraphQLWebSocket"]

log = get_logger("cognitionos.ws")


class _Adapter(ASGIWebSocketAdapter):
    """The socket as both protocol handlers use it: every message either sends passes
    here, and is counted by type (``cognitionos_websocket_messages_sent_total``).

    A message received over ``max_body_bytes`` is refused by closing with 1009, as HTTP
    answers 413. ``cognitionos serve`` sets uvicorn's frame limit to the same size, so
    there the message is never even buffered; this holds under any other ASGI server."""

    @property
    def services(self) -> Services:
        return cast("GraphQLWebSocket", self.view).services

    async def send_json(self, message: Mapping[str, object]) -> None:
        await super().send_json(message)
        self.services.metrics.ws_message_sent(message.get("type"))

    async def send_encoded(self, text: str, kind: str) -> None:
        """Send a message already serialized (a shared stream's ``next``); errors of the
        socket itself (WebSocketDisconnect, RuntimeError) propagate unchanged."""
        await self.ws.send_text(text)
        self.services.metrics.ws_message_sent(kind)

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object]:
        limit = self.services.settings.max_body_bytes
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if _too_big(text, limit):
                    await self.close(MESSAGE_TOO_BIG, f"Message larger than {limit} bytes")
                    return
                try:
                    yield self.view.decode_json(text)
                except JSONDecodeError as exc:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from exc
        except KeyError as exc:
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass


def _too_big(text: str, limit: int) -> bool:
    # A character is one to four UTF-8 bytes: encode only when the answer depends on it.
    return len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit)


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, guarded (``ws_guard``), with server pings once the connection
    is acknowledged, and subscriptions shared between the sockets that ask the same
    (``multiplex``)."""

    # A timer, not a task, between pings: one coroutine less per socket.
    _pinger: asyncio.TimerHandle | None = None
    _ping: asyncio.Task[None] | None = None
    guarded: GuardedSocket | None = None

    @property
    def guard(self) -> SocketGuard:
        return cast("GraphQLWebSocket", self.view).guard

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        # Strawberry's, with our admission: each refusal closes with its own code.
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload", {})
        if not isinstance(payload, dict):
            await self.websocket.close(code=4400, reason="Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        self.connection_init_received = True
        self.context.connection_params = payload
        try:
            self.guarded = await self.guard.admit(self.context, self._close)
        except Refused as exc:
            await self.websocket.close(code=exc.code, reason=exc.reason)
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        self._schedule_ping()

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload = message.get("payload") or {}
        documents = cast("CognitionSchema", self.schema).documents
        with subscribe_span(documents, payload.get("query"), payload.get("operationName")):
            await self._subscribe(message)

    async def _subscribe(self, message: SubscribeMessage) -> None:
        if self.guarded is not None and message["id"] not in self.operations:
            check = await self.guard.check_operation(self.guarded)
            if check.closed:
                return
            if check.error is not None:
                await self.send_message(
                    ErrorMessage(id=message["id"], type="error", payload=[check.error])
                )
                return
        await super().handle_subscribe(message)

    async def _close(self, code: int, reason: str) -> None:
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.websocket.close(code=code, reason=reason)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        principal = self.context.principal
        multiplexer: Multiplexer = self.view.multiplexer  # type: ignore[attr-defined]
        key = (
            multiplexer.key(
                _principal_key(principal),
                operation.query,
                operation.variables,
                operation.operation_name,
            )
            if principal is not None
            else None
        )
        if key is None:
            await super().run_operation(operation)
            return
        try:
            async for kind, payload in multiplexer.attach(key, lambda: self._items(operation)):
                if kind == "error":
                    await operation.send_operation_message(
                        {"id": operation.id, "type": "error", "payload": json.loads(payload)}
                    )
                    return
                if operation.completed:
                    return
                # The payload was serialized once for every socket sharing the stream.
                await cast(_Adapter, self.websocket).send_encoded(
                    f'{{"id":{json.dumps(operation.id)},"type":"next","payload":{payload}}}',
                    "next",
                )
        except SlowConsumer as exc:
            await operation.send_operation_message(
                {
                    "id": operation.id,
                    "type": "next",
                    "payload": {"data": None, "errors": [{"message": str(exc)}]},
                }
            )
        except (WebSocketDisconnect, RuntimeError):
            return
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await operation.send_operation_message({"id": operation.id, "type": "complete"})

    async def _items(self, operation: Operation[Context, None]) -> AsyncIterator[tuple[str, str]]:
        source = await self.schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=self.context,
            root_value=self.root_value,
            operation_name=operation.operation_name,
        )
        async with aclosing(source):
            first = True
            async for result in source:
                if first and isinstance(result, PreExecutionError):
                    yield "error", json.dumps([e.formatted for e in result.errors or []])
                    return
                first = False
                errors = getattr(result, "errors", None)
                payload: dict[str, Any] = {"data": getattr(result, "data", None)}
                if errors:
                    payload["errors"] = [e.formatted for e in errors]
                yield "next", json.dumps(payload, default=str)

    def _schedule_ping(self) -> None:
        interval = self.context.services.settings.ws_keepalive_seconds
        self._pinger = asyncio.get_running_loop().call_later(interval, self._send_ping)

    def _send_ping(self) -> None:
        self._schedule_ping()
        if self._ping is None or self._ping.done():
            self._ping = asyncio.create_task(self._ping_once())

    async def _ping_once(self) -> None:
        with contextlib.suppress(Exception):  # a socket going away: its reader notices
            await self.send_message({"type": "ping"})

    async def shutdown(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
        if self._ping is not None:
            self._ping.cancel()
            with contextlib.suppress(BaseException):
                await self._ping
        if self.guarded is not None:
            await self.guard.release(self.guarded)
        await super().shutdown()


class _LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """Legacy graphql-ws, guarded like graphql-transport-ws. A refused connection gets
    ``connection_error`` and the same close code (strawberry's own is 1011)."""

    guarded: GuardedSocket | None = None

    @property
    def guard(self) -> SocketGuard:
        return cast("GraphQLWebSocket", self.view).guard

    async def handle_connection_init(self, message: LegacyConnectionInitMessage) -> None:
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            await self.send_message({"type": "connection_error"})
            await self.websocket.close(code=1000, reason="")
            return
        if self.guarded is not None:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        self.context.connection_params = payload
        try:
            self.guarded = await self.guard.admit(self.context, self._close)
        except Refused as exc:
            await self.send_message(
                {"type": "connection_error", "payload": {"message": exc.reason}}
            )
            await self.websocket.close(code=exc.code, reason=exc.reason)
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        if self.keep_alive:
            self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())

    async def handle_start(self, message: StartMessage) -> None:
        payload = message.get("payload") or {}
        documents = cast("CognitionSchema", self.schema).documents
        with subscribe_span(documents, payload.get("query"), payload.get("operationName")):
            await self._start(message)

    async def _start(self, message: StartMessage) -> None:
        if self.guarded is not None:
            check = await self.guard.check_operation(self.guarded)
            if check.closed:
                return
            if check.error is not None:
                await self.send_message(
                    LegacyErrorMessage(type="error", id=message["id"], payload=check.error)
                )
                return
        await super().handle_start(message)

    async def _close(self, code: int, reason: str) -> None:
        for operation_id in list(self.tasks):
            await self.cleanup_operation(operation_id)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.websocket.close(code=code, reason=reason)

    async def cleanup(self) -> None:
        if self.guarded is not None:
            await self.guard.release(self.guarded)
        await super().cleanup()


def _principal_key(principal: Any) -> str:
    """Results may be shared only between sockets with the same rights."""
    scopes = ",".join(sorted(principal.scopes)) if principal.scopes is not None else "*"
    return f"{principal.user_id}:{principal.effective_role.value}:{scopes}"


class GraphQLWebSocket(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _LegacyWSHandler
    websocket_adapter_class = _Adapter

    def __init__(self, schema: CognitionSchema, services: Services) -> None:
        from datetime import timedelta

        settings = services.settings
        self.multiplexer = Multiplexer(queue_size=settings.pubsub_queue_size)
        super().__init__(
            schema,
            graphql_ide=None,
            keep_alive=True,  # legacy graphql-ws "ka" messages
            keep_alive_interval=settings.ws_keepalive_seconds,
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
        )
        self.services = services
        self.guard = SocketGuard(services)

    def start(self) -> None:
        """Listen for credential changes and keep connection slots alive (lifespan)."""
        self.guard.start()

    async def stop(self) -> None:
        await self.guard.stop()

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(
            services=self.services,
            request=request,
            # The id the middleware bound for the handshake: the one in the socket's logs.
            request_id=request.state.request_id,
            client=ClientInfo(
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            ),
            loaders=Loaders(self.services.sessionmaker, None),
        )

    async def handle(self, websocket: WebSocket) -> None:
        gauge = self.services.metrics.ws_connections
        gauge.inc()
        try:
            await self.run(websocket)
        finally:
            gauge.dec()
