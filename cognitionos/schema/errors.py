"""One place where errors become ``extensions.code``; everything unexpected is masked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from cognitionos.observability import get_logger
from cognitionos.schema.labels import operation_label
from cognitionos.services.errors import CognitionError

__all__ = ["INTERNAL_ERROR_MESSAGE", "ErrorFormatter", "format_error_extensions"]

INTERNAL_ERROR_MESSAGE = "Internal server error"
log = get_logger("cognitionos.graphql")


def format_error_extensions(error: GraphQLError, request_id: str) -> GraphQLError:
    """Return the error as the client should see it."""
    original = error.original_error
    if isinstance(original, CognitionError):
        extensions: dict[str, Any] = original.as_extensions()
        message = original.message
    elif original is None or isinstance(original, GraphQLError):
        # Syntax, validation, limits (depth, aliases, tokens), variable coercion.
        extensions = {"code": "BAD_USER_INPUT", **(error.extensions or {})}
        message = error.message
    else:
        log.error(
            "unexpected error in resolver",
            path=error.path,
            exc_info=(type(original), original, original.__traceback__),
        )
        extensions = {"code": "INTERNAL_SERVER_ERROR"}
        message = INTERNAL_ERROR_MESSAGE
    extensions["requestId"] = request_id
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original if isinstance(original, CognitionError) else None,
        extensions=extensions,
    )


class ErrorFormatter(SchemaExtension):
    """Maps domain errors to codes, masks the rest, counts both, marks execution."""

    def on_execute(self) -> Iterator[None]:
        self.execution_context.context.executed = True
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        try:
            context.operation_type = self.execution_context.operation_type.value
        except RuntimeError:
            pass  # no valid document: keep the defaults
        context.operation_label = operation_label(
            self.execution_context.schema._schema,
            self.execution_context.graphql_document,
            self.execution_context.operation_name,
        )
        self._format(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Each result a subscription sends, before it leaves."""
        self._format(result)
        yield

    def _format(self, result: Any) -> None:
        errors = getattr(result, "errors", None)
        if not errors:
            return
        context = self.execution_context.context
        metric = context.services.metrics.graphql_errors
        formatted = []
        for error in errors:
            if "requestId" in (error.extensions or {}):
                formatted.append(error)  # done already
                continue
            error = format_error_extensions(error, context.request_id)
            metric.labels((error.extensions or {}).get("code", "UNKNOWN")).inc()
            formatted.append(error)
        result.errors = formatted
