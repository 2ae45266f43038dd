"""Prometheus metrics, one registry per app (so tests and replicas don't collide).

Every label value is ours or capped: a value a client picks (an operation name, a path,
an HTTP method, a model name in a workflow) must never mint a new series, or a loop of
requests grows the registry, and every scrape, without bound.
"""

from __future__ import annotations

import hmac
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any, Generic, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = [
    "CONTENT_TYPE_LATEST",
    "OTHER",
    "Metrics",
    "bearer_matches",
    "http_method_label",
    "serve_metrics",
]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
OTHER = "other"
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_MAX_MODELS = 50  # distinct LLM model labels before the rest are counted as "other"
_MAX_WORKFLOWS = 50  # distinct workflow keys, likewise
_RUN_TIMES = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# What the server sends: graphql-transport-ws, then legacy graphql-ws's own types.
_WS_MESSAGE_TYPES = (
    "connection_ack", "next", "error", "complete", "ping", "pong",
    "connection_error", "data", "ka",
)  # fmt: skip
_M = TypeVar("_M", Counter, Histogram)


def http_method_label(method: str) -> str:
    return method if method in _HTTP_METHODS else OTHER


class _Vocabulary:
    """The first ``limit`` distinct values, then ``other``: for a label whose values are
    legitimate but chosen by users (the model an LLM step names)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.known: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self.known:
            return value
        with self.lock:
            if len(self.known) < self.limit:
                self.known.add(value)
                return value
        return OTHER


class _Capped(Generic[_M]):
    """A metric whose label at each given position goes through a vocabulary."""

    def __init__(self, metric: _M, caps: Mapping[int, Callable[[str], str]]) -> None:
        self.metric: _M = metric
        self.caps = caps

    def labels(self, *values: str) -> _M:
        bounded = [self.caps[i](v) if i in self.caps else v for i, v in enumerate(values)]
        child: _M = self.metric.labels(*bounded)
        return child


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "cognitionos_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "cognitionos_http_request_duration_seconds",
            "HTTP request duration",
            ["method", "route"],
            buckets=_LATENCY,
            registry=r,
        )
        self.graphql_operations = Counter(
            "cognitionos_graphql_operations_total",
            "GraphQL operations",
            ["type", "name", "outcome"],
            registry=r,
        )
        self.graphql_duration = Histogram(
            "cognitionos_graphql_operation_duration_seconds",
            "GraphQL operation duration",
            ["type", "name"],
            buckets=_LATENCY,
            registry=r,
        )
        self.graphql_errors = Counter(
            "cognitionos_graphql_errors_total",
            "GraphQL errors by extensions.code",
            ["code"],
            registry=r,
        )
        self.auth_results = Counter(
            "cognitionos_auth_results_total",
            "Authentication attempts",
            ["method", "result"],
            registry=r,
        )
        self.ws_connections = Gauge(
            "cognitionos_websocket_connections", "Open websocket connections", registry=r
        )
        self.ws_messages_sent = Counter(
            "cognitionos_websocket_messages_sent_total",
            "Websocket messages sent, by protocol message type (graphql-transport-ws: "
            "connection_ack, next, error, complete, ping, pong; graphql-ws: also "
            "connection_error, data, ka)",
            ["type"],
            registry=r,
        )
        # Made up front: every type's series exists from the start, and counting one is a
        # dict lookup on the fan-out path.
        self._ws_sent = {
            kind: self.ws_messages_sent.labels(kind) for kind in (*_WS_MESSAGE_TYPES, OTHER)
        }
        self.pubsub_reconnects = Counter(
            "cognitionos_pubsub_reconnects_total",
            "Redis pub/sub connections re-established after being lost: a web process's "
            "hub (hub; every live subscription then backfills from the event log) and a "
            "worker's wake-up subscription (wake)",
            ["connection"],
            registry=r,
        )
        self.db_pool_checked_out = Gauge(
            "cognitionos_db_pool_checked_out", "DB connections in use", registry=r
        )
        self.ws_subscriptions = Gauge(
            "cognitionos_websocket_subscriptions", "Live pub/sub subscribers", registry=r
        )
        self.events = Counter(
            "cognitionos_events_total",
            "Events appended (executions and steps by transition)",
            ["type"],
            registry=r,
        )
        self.dispatch_latency = Histogram(
            "cognitionos_step_dispatch_latency_seconds",
            "From a step being ready to a worker starting it",
            buckets=_LATENCY,
            registry=r,
        )
        self.queue_depth = Gauge(
            "cognitionos_queue_depth", "Jobs waiting in the arq queue", registry=r
        )
        model = {1: _Vocabulary(_MAX_MODELS)}  # (provider, model, ...): one cap for all four
        self.llm_requests = _Capped(
            Counter(
                "cognitionos_llm_requests_total",
                "LLM calls (each attempt) by provider, model and outcome",
                ["provider", "model", "outcome"],
                registry=r,
            ),
            model,
        )
        self.llm_tokens = _Capped(
            Counter(
                "cognitionos_llm_tokens_total",
                "LLM tokens by direction (in, out)",
                ["provider", "model", "direction"],
                registry=r,
            ),
            model,
        )
        self.llm_cost = _Capped(
            Counter(
                "cognitionos_llm_cost_usd_total",
                "LLM spend in USD (calls of models with a known price)",
                ["provider", "model"],
                registry=r,
            ),
            model,
        )
        self.notifications = Counter(
            "cognitionos_notifications_total",
            "Notification delivery outcomes by channel and status",
            ["channel", "status"],
            registry=r,
        )
        self.llm_latency = _Capped(
            Histogram(
                "cognitionos_llm_request_duration_seconds",
                "LLM call duration",
                ["provider", "model"],
                buckets=_LATENCY,
                registry=r,
            ),
            model,
        )

        workflow = {0: _Vocabulary(_MAX_WORKFLOWS)}  # workflow keys are users' to choose
        self.execution_duration = _Capped(
            Histogram(
                "cognitionos_execution_duration_seconds",
                "From an execution's start to its end, by workflow key and final status",
                ["workflow", "status"],
                buckets=_RUN_TIMES,
                registry=r,
            ),
            workflow,
        )
        self.step_duration = _Capped(
            Histogram(
                "cognitionos_step_duration_seconds",
                "One step attempt, start to end, by workflow key, kind and how it ended "
                "(SUCCEEDED, FAILED, RETRYING, CANCELLED)",
                ["workflow", "kind", "status"],
                buckets=_RUN_TIMES,
                registry=r,
            ),
            workflow,
        )
        self.reconciler_redispatches = Counter(
            "cognitionos_reconciler_redispatches_total",
            "Steps the reconciler dispatched again: lost dispatches (lost) and steps of "
            "dead workers (lease_expired)",
            ["reason"],
            registry=r,
        )
        self.memory_duration = Histogram(
            "cognitionos_memory_operation_duration_seconds",
            "Memory store (embedding included) and search",
            ["operation"],
            buckets=_LATENCY,
            registry=r,
        )
        self.notification_latency = Histogram(
            "cognitionos_notification_delivery_seconds",
            "From a notification being due to its delivery, by channel",
            ["channel"],
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=r,
        )
        self.search_requests = Counter(
            "cognitionos_search_requests_total",
            "search and suggest requests by the types asked for (ALL or a sorted list) "
            "and outcome (hits, empty, corrected, bad_input, error)",
            ["operation", "types", "outcome"],
            registry=r,
        )
        self.search_duration = Histogram(
            "cognitionos_search_duration_seconds",
            "search and suggest duration",
            ["operation"],
            buckets=_LATENCY,
            registry=r,
        )

    def ws_message_sent(self, kind: object) -> None:
        """Count one websocket message by its ``type``: one of the protocols' own, else
        ``other``."""
        child = self._ws_sent.get(kind) if isinstance(kind, str) else None
        (child or self._ws_sent[OTHER]).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def bearer_matches(authorization: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve_metrics(metrics: Metrics, *, host: str, port: int, token: str | None) -> WSGIServer:
    """A separate worker's ``/metrics`` on its own port, in a thread; with ``token``, only
    for ``Authorization: Bearer <token>``. Stop it with ``shutdown()``."""
    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if token is not None and not bearer_matches(environ.get("HTTP_AUTHORIZATION"), token):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"metrics need Authorization: Bearer <COGNITIONOS_METRICS_TOKEN>\n"]
        return exposition(environ, start_response)  # type: ignore[no-any-return]

    server_class = _ThreadingServer
    if ":" in host:

        class _IPv6(_ThreadingServer):
            address_family = socket.AF_INET6

        server_class = _IPv6
    server = make_server(host, port, app, server_class, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    return server
