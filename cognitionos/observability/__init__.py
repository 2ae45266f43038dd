"""Logging, metrics and tracing."""

from __future__ import annotations

from cognitionos.observability.logging import bind_request, configure_logging, get_logger
from cognitionos.observability.metrics import Metrics
from cognitionos.observability.tracing import configure_tracing

__all__ = ["Metrics", "bind_request", "configure_logging", "configure_tracing", "get_logger"]
