"""GraphQL types for search and suggestions."""

from __future__ import annotations

from datetime import datetime

import strawberry

from cognitionos.schema.common import PageInfo
from cognitionos.services.search import (
    Facet,
    Highlight,
    SearchFilter,
    SearchHit,
    SearchResult,
    SearchType,
    Suggestion,
)

__all__ = [
    "FacetType",
    "FacetValueType",
    "SearchFilterInput",
    "SearchHighlight",
    "SearchHitType",
    "SearchResultType",
    "SuggestionType",
]

strawberry.enum(SearchType, name="SearchType")


@strawberry.input(name="SearchFilter")
class SearchFilterInput:
    tags: list[str] | None = strawberry.field(
        default=None, description="Every one of them: workflow tags, agent capabilities."
    )
    status: list[str] | None = strawberry.field(
        default=None, description="Any of them: execution, agent or notification status."
    )
    created_after: datetime | None = None
    created_before: datetime | None = None

    def to_filter(self) -> SearchFilter:
        return SearchFilter(
            tags=tuple(self.tags or ()),
            status=tuple(self.status or ()),
            created_after=self.created_after,
            created_before=self.created_before,
        )


@strawberry.type(name="SearchHighlight")
class SearchHighlight:
    field: str
    text: str = strawberry.field(
        description="The field's text, HTML-escaped, with matches in <mark>…</mark>."
    )

    @classmethod
    def from_highlight(cls, h: Highlight) -> SearchHighlight:
        return cls(field=h.field, text=h.text)


@strawberry.type(name="SearchHit")
class SearchHitType:
    type: SearchType
    id: strawberry.ID
    title: str = strawberry.field(description="Plain text.")
    snippet: str = strawberry.field(
        description="The best passage, HTML-escaped, with matches in <mark>…</mark>."
    )
    score: float = strawberry.field(description="What hits are sorted by (README: Search).")
    highlights: list[SearchHighlight]
    created_at: datetime
    cursor: str

    @classmethod
    def from_hit(cls, hit: SearchHit) -> SearchHitType:
        return cls(
            type=hit.type,
            id=strawberry.ID(str(hit.id)),
            title=hit.title,
            snippet=hit.snippet,
            score=hit.score,
            highlights=[SearchHighlight.from_highlight(h) for h in hit.highlights],
            created_at=hit.created_at,
            cursor=hit.cursor,
        )


@strawberry.type(name="FacetValue")
class FacetValueType:
    value: str
    count: int


@strawberry.type(name="Facet")
class FacetType:
    field: str = strawberry.field(description="type, tag or status")
    values: list[FacetValueType]

    @classmethod
    def from_facet(cls, f: Facet) -> FacetType:
        return cls(
            field=f.field, values=[FacetValueType(value=v.value, count=v.count) for v in f.values]
        )


@strawberry.type(name="SearchResult")
class SearchResultType:
    total: int = strawberry.field(description="Hits in the whole match, not the page.")
    hits: list[SearchHitType]
    facets: list[FacetType] = strawberry.field(description="Counted over the whole match.")
    did_you_mean: str | None = strawberry.field(
        description="A corrected query that finds more; when the query as typed found "
        "nothing, the hits are this one's."
    )
    page_info: PageInfo

    @classmethod
    def from_result(cls, r: SearchResult) -> SearchResultType:
        return cls(
            total=r.total,
            hits=[SearchHitType.from_hit(h) for h in r.hits],
            facets=[FacetType.from_facet(f) for f in r.facets],
            did_you_mean=r.did_you_mean,
            page_info=PageInfo(has_next_page=r.has_next_page, end_cursor=r.end_cursor),
        )


@strawberry.type(name="Suggestion")
class SuggestionType:
    text: str
    type: SearchType
    id: strawberry.ID = strawberry.field(description="The newest row that offers it.")
    field: str = strawberry.field(
        description="What the text is: name, key, tag, capability or subject."
    )

    @classmethod
    def from_suggestion(cls, s: Suggestion) -> SuggestionType:
        return cls(text=s.text, type=s.type, id=strawberry.ID(str(s.id)), field=s.field)
