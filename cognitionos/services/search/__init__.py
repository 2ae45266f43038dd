"""Search across everything on PostgreSQL itself: weighted full text, trigram typo
correction, facets and highlights, authorized in SQL (see README "Search")."""

from __future__ import annotations

from cognitionos.services.search._input import MAX_PAGE, MAX_QUERY, MAX_SUGGESTIONS
from cognitionos.services.search._suggest import suggest
from cognitionos.services.search._types import (
    Facet,
    FacetValue,
    Highlight,
    SearchFilter,
    SearchHit,
    SearchResult,
    SearchType,
    Suggestion,
)
from cognitionos.services.search.service import search

__all__ = [
    "MAX_PAGE",
    "MAX_QUERY",
    "MAX_SUGGESTIONS",
    "Facet",
    "FacetValue",
    "Highlight",
    "SearchFilter",
    "SearchHit",
    "SearchResult",
    "SearchType",
    "Suggestion",
    "search",
    "suggest",
]
