"""GraphQL over websockets (graphql-transport-ws and legacy graphql-ws) at ``/graphql``.

Strawberry's view speaks both protocols. We add: credentials in ``connection_init``
(``{"authorization": "Bearer …"}`` or ``{"apiKey": "…"}``), refused with the protocol's
forbidden close (4403); server keep-alive pings on graphql-transport-ws; and a Context
per connection whose resolvers open their own sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.execution import PreExecutionError
from strawberry.types.unset import UnsetType

from cognitionos.context import Context, Services
from cognitionos.dataloaders import Loaders
from cognitionos.observability import bind_request, get_logger
from cognitionos.schema import CognitionSchema
from cognitionos.services.auth import ClientInfo, credential_from_headers, identify
from cognitionos.services.errors import Unauthenticated
from cognitionos.subscriptions.multiplex import Multiplexer, SlowConsumer, subscription_key

__all__ = ["GraphQLWebSocket"]

log = get_logger("cognitionos.ws")


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with server pings once the connection is acknowledged, and
    subscriptions shared between the sockets that ask the same (``multiplex``)."""

    _pinger: asyncio.Task[None] | None = None

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        principal = self.context.principal
        key = (
            subscription_key(
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
        multiplexer: Multiplexer = self.view.multiplexer  # type: ignore[attr-defined]
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
                await self.websocket.ws.send_text(  # type: ignore[attr-defined]
                    f'{{"id":{json.dumps(operation.id)},"type":"next","payload":{payload}}}'
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

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self._pinger is None:
            self._pinger = asyncio.create_task(self._ping())

    async def _ping(self) -> None:
        interval = self.context.services.settings.ws_keepalive_seconds
        while True:
            await asyncio.sleep(interval)
            await self.send_message({"type": "ping"})

    async def shutdown(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(BaseException):
                await self._pinger
        await super().shutdown()


def _principal_key(principal: Any) -> str:
    """Results may be shared only between sockets with the same rights."""
    scopes = ",".join(sorted(principal.scopes)) if principal.scopes is not None else "*"
    return f"{principal.user_id}:{principal.effective_role.value}:{scopes}"


class GraphQLWebSocket(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = _TransportWSHandler

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

    async def get_context(self, request: Any, response: Any) -> Context:
        request_id = uuid.uuid4().hex
        return Context(
            services=self.services,
            request=request,
            request_id=request_id,
            client=ClientInfo(
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            ),
            loaders=Loaders(self.services.sessionmaker, None),
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        metrics = self.services.metrics
        try:
            authorization = params.get("authorization") or params.get("Authorization")
            api_key = params.get("apiKey") or params.get("x-api-key")
            credential = credential_from_headers(
                str(authorization) if authorization else None, str(api_key) if api_key else None
            )
            if credential is None:
                raise Unauthenticated("send credentials in the connection_init payload")
            async with self.services.sessionmaker() as session:
                context.principal = await identify(
                    session, credential=credential, policy=self.services.token_policy
                )
        except Unauthenticated as exc:
            metrics.auth_results.labels("websocket", "rejected").inc()
            log.info("websocket rejected", reason=exc.message)
            raise ConnectionRejectionError({"message": exc.message}) from None
        metrics.auth_results.labels("websocket", "success").inc()
        context.loaders = Loaders(self.services.sessionmaker, context.principal)
        bind_request(user_id=str(context.principal.user_id))
        return None

    async def handle(self, websocket: WebSocket) -> None:
        gauge = self.services.metrics.ws_connections
        gauge.inc()
        try:
            await self.run(websocket)
        finally:
            gauge.dec()
