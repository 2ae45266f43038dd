"""Request middleware (pure ASGI): the server span; request id, JSON access log, HTTP metrics."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.trace import Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cognitionos.observability import Metrics, get_logger
from cognitionos.observability.metrics import OTHER, http_method_label
from cognitionos.observability.tracing import exporting

__all__ = ["HTTPTracing", "RequestContextMiddleware"]

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_ROUTES = ("/graphql", "/health/live", "/health/ready", "/metrics")
log = get_logger("cognitionos.http")


def _route(path: str) -> str:
    return path if path in _ROUTES else OTHER


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    method = http_method_label(scope["method"])
    route = _route(scope["path"])
    return f"{method} {route}", {"http.route": route}


class HTTPTracing:
    """OpenTelemetry's ASGI middleware, for HTTP only: the server span of each request
    (continuing a ``traceparent`` the client sent), named by method and known route. A
    websocket gets no span for its whole life: each subscribe has one (graphql_ws.py).
    Probes and scrapes are not traced, nor anything while traces are not exported."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.traced = OpenTelemetryMiddleware(
            app,
            excluded_urls="/metrics,/health/live,/health/ready",
            default_span_details=_span_details,
            exclude_spans=["receive", "send"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Nothing exported: every span would be sampled out, so the middleware's work
        # (attributes, context, wrapped send) buys nothing; log lines then carry the
        # GraphQL operation's trace id (schema/tracing.py).
        if scope["type"] == "http" and exporting():
            await self.traced(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        method = http_method_label(scope["method"])
        route = _route(scope["path"])
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                if not any(k.lower() == b"x-request-id" for k, _ in message["headers"]):
                    message["headers"].append((b"x-request-id", request_id.encode()))
            await send(message)

        span = trace.get_current_span()  # HTTPTracing's
        if span.is_recording():
            span.set_attribute("cognitionos.request_id", request_id)
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error", method=scope["method"], path=scope["path"])
            span.set_status(Status(StatusCode.ERROR))
            await self._internal_error(send, request_id)
            status = 500
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_duration.labels(method, route).observe(elapsed)
            if route != "/metrics":
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )

    @staticmethod
    async def _internal_error(send: Send, request_id: str) -> None:
        body: dict[str, Any] = {
            "errors": [
                {
                    "message": "Internal server error",
                    "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
                }
            ]
        }
        payload = json.dumps(body).encode()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"x-request-id", request_id.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
        except RuntimeError:
            pass  # the response had already started; nothing more can be sent
