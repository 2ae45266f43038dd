"""OpenTelemetry: OTLP export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = ["configure_tracing"]

_configured: TracerProvider | None = None


def configure_tracing(*, service_name: str, otlp_endpoint: str | None) -> trace.Tracer:
    """Install one tracer provider per process (OTel allows only one) and return a tracer."""
    global _configured
    if _configured is None:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = otlp_endpoint.rstrip("/")
            if not endpoint.endswith("/v1/traces"):
                endpoint += "/v1/traces"
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(provider)
        _configured = provider
    return trace.get_tracer("cognitionos")
