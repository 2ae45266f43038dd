"""Prometheus metrics, one registry per app (so tests and replicas don't collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


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
        self.llm_requests = Counter(
            "cognitionos_llm_requests_total",
            "LLM calls (each attempt) by provider, model and outcome",
            ["provider", "model", "outcome"],
            registry=r,
        )
        self.llm_tokens = Counter(
            "cognitionos_llm_tokens_total",
            "LLM tokens by direction (in, out)",
            ["provider", "model", "direction"],
            registry=r,
        )
        self.llm_cost = Counter(
            "cognitionos_llm_cost_usd_total",
            "LLM spend in USD (calls of models with a known price)",
            ["provider", "model"],
            registry=r,
        )
        self.notifications = Counter(
            "cognitionos_notifications_total",
            "Notification delivery outcomes by channel and status",
            ["channel", "status"],
            registry=r,
        )
        self.llm_latency = Histogram(
            "cognitionos_llm_request_duration_seconds",
            "LLM call duration",
            ["provider", "model"],
            buckets=_LATENCY,
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
