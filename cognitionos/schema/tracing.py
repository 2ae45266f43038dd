"""A span per GraphQL operation, named and described as the OpenTelemetry semantic
conventions for GraphQL say: ``mutation executeWorkflow``, ``query`` when unnamed,
``GraphQL Operation`` when the document does not say.

Not strawberry's ``OpenTelemetryExtension``: that one names spans otherwise, adds a
span per resolver (DESIGN §9: not by default) and never makes its span current, so the
database and Redis spans of the operation would not be its children. Over websockets
the span is per subscribe message (``web/graphql_ws.py``), not per operation run: a
shared subscription stream runs once for many sockets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from graphql import DocumentNode, GraphQLError, get_operation_ast, parse
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension

from cognitionos.schema.documents import DocumentCache
from cognitionos.schema.labels import operation_label

__all__ = ["OperationSpan", "subscribe_span"]

UNKNOWN = "GraphQL Operation"
_tracer = trace.get_tracer("cognitionos.graphql")


def name_operation_span(
    span: trace.Span, document: DocumentNode | None, operation_name: str | None
) -> tuple[str, str | None]:
    """Name ``span`` after the operation ``document`` selects; return its type and name."""
    operation = get_operation_ast(document, operation_name) if document is not None else None
    if operation is None:
        return "", None
    kind = operation.operation.value
    name = operation.name.value if operation.name else None
    span.update_name(f"{kind} {name}" if name else kind)
    span.set_attribute("graphql.operation.type", kind)
    if name:
        span.set_attribute("graphql.operation.name", name)
    return kind, name


def parse_for_span(documents: DocumentCache, query: str) -> DocumentNode | None:
    """The parsed document from the schema's cache, or parsed here (None if it does not
    parse: the operation itself reports that)."""
    entry = documents.get(query)
    if entry is not None:
        return entry.document
    try:  # never beyond the token limit the operation itself gets
        return parse(query, max_tokens=documents.max_tokens)
    except GraphQLError:
        return None


class OperationSpan(SchemaExtension):
    """The HTTP request's operation, as a span current while it parses and runs."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(getattr(context, "request", None), WebSocket):
            yield  # web/graphql_ws.py traces each subscribe
            return
        with _tracer.start_as_current_span(UNKNOWN, kind=SpanKind.INTERNAL) as span:
            yield
            if not span.is_recording():
                return
            ec = self.execution_context
            document = ec.graphql_document
            name_operation_span(span, document, ec.operation_name)
            span.set_attribute(
                "cognitionos.graphql.root_field",
                operation_label(ec.schema._schema, document, ec.operation_name),
            )
            codes = sorted(
                {
                    str((error.extensions or {}).get("code", "UNKNOWN"))
                    for error in (ec.result.errors if ec.result else None) or []
                }
            )
            if codes:
                span.set_attribute("cognitionos.graphql.error_codes", codes)


@contextmanager
def subscribe_span(
    documents: DocumentCache, query: object, operation_name: object
) -> Iterator[trace.Span]:
    """The span of one websocket subscribe (any operation type): a trace of its own,
    current while the operation is accepted and started (its task inherits it)."""
    with _tracer.start_as_current_span(
        UNKNOWN, context=otel_context.Context(), kind=SpanKind.SERVER
    ) as span:
        if span.is_recording() and isinstance(query, str):
            name = operation_name if isinstance(operation_name, str) else None
            name_operation_span(span, parse_for_span(documents, query), name)
        yield span
