"""Search resolvers: ranked search with facets, and as-you-type suggestions."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import strawberry
from strawberry import Info

from cognitionos.context import Context
from cognitionos.schema.permissions import IsViewer
from cognitionos.schema.search import (
    SearchFilterInput,
    SearchResultType,
    SuggestionType,
)
from cognitionos.services.errors import BadUserInput
from cognitionos.services.search import SearchResult, SearchType, search, suggest

__all__ = ["SearchQuery"]

T = TypeVar("T")


def _types_label(types: Sequence[SearchType] | None) -> str:
    if not types or set(types) == set(SearchType):
        return "ALL"
    return ",".join(sorted({t.value for t in types}))


async def _counted(
    ctx: Context,
    operation: str,
    types: Sequence[SearchType] | None,
    run: Callable[[], Awaitable[T]],
    outcome: Callable[[T], str],
) -> T:
    metrics, started = ctx.services.metrics, time.perf_counter()
    label = _types_label(types)
    try:
        result = await run()
    except BadUserInput:
        metrics.search_requests.labels(operation, label, "bad_input").inc()
        raise
    except Exception:
        metrics.search_requests.labels(operation, label, "error").inc()
        raise
    metrics.search_requests.labels(operation, label, outcome(result)).inc()
    metrics.search_duration.labels(operation).observe(time.perf_counter() - started)
    return result


def _search_outcome(r: SearchResult) -> str:
    if r.corrected:
        return "corrected"
    return "hits" if r.total else "empty"


@strawberry.type
class SearchQuery:
    @strawberry.field(
        permission_classes=[IsViewer],
        description="Everything you may see, best first: field-weighted full text with "
        "phrase and prefix boosts, typo correction, facets and highlights.",
    )
    async def search(
        self,
        info: Info[Context, None],
        query: str,
        types: list[SearchType] | None = None,
        filter: SearchFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> SearchResultType:
        ctx = info.context
        result = await _counted(
            ctx,
            "search",
            types,
            lambda: search(
                ctx.services.reader,
                principal=ctx.require_principal(),
                query=query,
                types=types,
                filter=filter.to_filter() if filter else None,
                first=first,
                after=after,
            ),
            _search_outcome,
        )
        return SearchResultType.from_result(result)

    @strawberry.field(
        permission_classes=[IsViewer],
        description="As-you-type completions: workflows' names, keys and tags, agents' "
        "names and capabilities, your executions' workflow keys and your notifications' "
        "subjects.",
    )
    async def suggest(
        self,
        info: Info[Context, None],
        prefix: str,
        types: list[SearchType] | None = None,
        limit: int | None = 8,
    ) -> list[SuggestionType]:
        ctx = info.context
        found = await _counted(
            ctx,
            "suggest",
            types,
            lambda: suggest(
                ctx.services.reader,
                principal=ctx.require_principal(),
                prefix=prefix,
                types=types,
                limit=limit,
            ),
            lambda s: "hits" if s else "empty",
        )
        return [SuggestionType.from_suggestion(s) for s in found]
