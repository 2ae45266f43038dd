"""OpenTelemetry: one tracer provider per process, OTLP/HTTP export when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and the trace context a dispatched job carries.

Nothing exported: every span is sampled out (ids still exist, so log lines keep their
trace id) and the libraries are not instrumented, which costs next to nothing. Exported:
SQLAlchemy, asyncpg, Redis and httpx are instrumented (their packages, not spans of our
own), sampled as ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` say (the SDK reads
them; default: parent-based, always on), minus one rule: a client call outside any
span (an idle worker polling Redis, a background loop asking Postgres whether anything
is due) is dropped, or those would be most of the traces.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    Sampler,
    SamplingResult,
    _get_from_env_or_default,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

__all__ = [
    "LINK",
    "TraceCarrier",
    "carrier_of_current_span",
    "configure_tracing",
    "continued_span",
    "exporting",
]

TraceCarrier = dict[str, str]
# In a stored carrier: the job starts a trace of its own linked to this context, instead
# of continuing it (a step run again later is not part of the request that started it).
LINK = "cognitionos-relation"

_configured: TracerProvider | None = None
_exporting = False


class _NoOrphanClients(Sampler):
    """The configured sampler, except that a CLIENT span without a parent is dropped."""

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind is SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoOrphanClients{{{self.delegate.get_description()}}}"


def configure_tracing(
    *, service_name: str, otlp_endpoint: str | None, role: str = "web"
) -> trace.Tracer:
    """Install this process's tracer provider (OTel allows one; the first call wins) and
    return a tracer. ``role`` (web, worker) is a resource attribute."""
    global _configured, _exporting
    if _configured is None:
        resource = Resource.create(
            {
                "service.name": service_name,
                "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
                "cognitionos.role": role,
            }
        )
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = otlp_endpoint.rstrip("/")
            if not endpoint.endswith("/v1/traces"):
                endpoint += "/v1/traces"
            provider = TracerProvider(
                resource=resource, sampler=_NoOrphanClients(_get_from_env_or_default())
            )
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
            _instrument_libraries(provider)
            _exporting = True
        else:
            provider = TracerProvider(resource=resource, sampler=ALWAYS_OFF)
        trace.set_tracer_provider(provider)
        _configured = provider
    return trace.get_tracer("cognitionos")


def exporting() -> bool:
    """Whether this process exports its spans (worth extra work to name them well)."""
    return _exporting


def _instrument_libraries(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import (
        HTTPX2ClientInstrumentor,
        HTTPXClientInstrumentor,
    )
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # SQLAlchemy's patches create_engine: every engine made from now on is traced. Its
    # declared range stops below SQLAlchemy 2.1, whose engine events it uses unchanged.
    SQLAlchemyInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    HTTPX2ClientInstrumentor().instrument(tracer_provider=provider)  # the LLM SDKs' client


def carrier_of_current_span() -> TraceCarrier | None:
    """The current span's context as W3C headers (``traceparent``, ``tracestate``), or
    None outside any span or in one that is not sampled (nothing to continue)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid or not span_context.trace_flags.sampled:
        return None
    carrier: TraceCarrier = {}
    inject(carrier)
    return carrier or None


@contextmanager
def continued_span(
    tracer: trace.Tracer,
    name: str,
    carrier: Mapping[str, str] | None,
    *,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: Attributes = None,
) -> Iterator[trace.Span]:
    """A span for work a carrier was sent with: its child, or (``LINK`` in the carrier)
    the root of a new trace linked to it. The span is current inside the block."""
    parent = otel_context.Context()  # never whatever the calling task happened to hold
    links: list[Link] = []
    if carrier:
        remote = trace.get_current_span(extract(dict(carrier))).get_span_context()
        if remote.is_valid:
            if carrier.get(LINK):
                links.append(Link(remote, {"cognitionos.link": "previous attempt"}))
            else:
                parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    with tracer.start_as_current_span(
        name, context=parent, kind=kind, links=links, attributes=attributes
    ) as span:
        yield span
