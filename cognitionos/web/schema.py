"""The assembled GraphQL schema, built per app from its settings (limits, introspection).

It lives beside the HTTP and websocket views, not in ``schema/__init__``: the resolvers
and subscriptions import the types in ``schema/``, so the package that defines the types
cannot also import them."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    SchemaExtension,
)
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.types import ExecutionContext

from cognitionos.config import Settings
from cognitionos.resolvers import Mutation, Query
from cognitionos.schema.common import SCALAR_OVERRIDES
from cognitionos.schema.documents import CachedDocuments, DocumentCache
from cognitionos.schema.errors import ErrorFormatter
from cognitionos.schema.execution import fast_leaves_for, lean_resolvers
from cognitionos.schema.permissions import ReadOnlyCredentials
from cognitionos.schema.storable import RefuseUnstorableStrings
from cognitionos.schema.tracing import OperationSpan
from cognitionos.subscriptions import Subscription

__all__ = ["CognitionSchema", "build_schema"]


class CognitionSchema(strawberry.Schema):
    def __init__(self, *, documents: DocumentCache, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.documents = documents  # parsed and validated documents (schema/documents.py)
        # Plain scalar fields skip graphql-core's per-field machinery (schema/execution.py).
        self.execution_context_class = fast_leaves_for(self._schema)
        lean_resolvers(self)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Logging happens in ErrorFormatter: only unexpected errors, with the trace."""


def build_schema(settings: Settings) -> CognitionSchema:
    """The schema of an app of ``settings`` (read once, by the process's entry point)."""
    # Factories, not instances: each operation gets fresh extension state.
    extensions: list[Any] = [
        OperationSpan,  # first: its span holds every other extension's work
        ErrorFormatter,
        ReadOnlyCredentials,
        RefuseUnstorableStrings,
        partial(MaxTokensLimiter, max_token_count=settings.max_tokens),
        # strawberry's QueryDepthLimiter and MaxAliasesLimiter, with their rule classes
        # built once here rather than on every operation (they were 5 % of a small one).
        partial(
            AddValidationRules,
            [
                depth_rule(settings.max_query_depth, should_ignore=None),
                aliases_rule(settings.max_aliases),
            ],
        ),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    documents = DocumentCache(entries=settings.document_cache_size, max_tokens=settings.max_tokens)
    # Last: it must see the refusals the extensions above set before validation.
    extensions.append(partial(CachedDocuments, cache=documents))
    typed: list[type[SchemaExtension]] = extensions
    return CognitionSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=typed,
        scalar_overrides=SCALAR_OVERRIDES,
        documents=documents,
    )
