"""What a search asks for and what it answers."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "Facet",
    "FacetValue",
    "Highlight",
    "SearchFilter",
    "SearchHit",
    "SearchResult",
    "SearchType",
    "Suggestion",
    "encode_cursor",
]


class SearchType(StrEnum):
    WORKFLOW = "WORKFLOW"
    EXECUTION = "EXECUTION"
    AGENT = "AGENT"
    MEMORY = "MEMORY"
    NOTIFICATION = "NOTIFICATION"


@dataclass(frozen=True)
class SearchFilter:
    """Narrows the match; facets are counted over what is left."""

    tags: Sequence[str] = ()  # every one of them (workflow tags, agent capabilities)
    status: Sequence[str] = ()  # any of them (executions, agents, notifications)
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class Highlight:
    """A field with its matched words between ``<mark>`` and ``</mark>`` (the rest of
    the text HTML-escaped)."""

    field: str
    text: str


def encode_cursor(score: float, created_at: datetime, id_: uuid.UUID) -> str:
    raw = f"{score!r}|{created_at.isoformat()}|{id_}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class SearchHit:
    type: SearchType
    id: uuid.UUID
    created_at: datetime
    score: float
    title: str = ""
    snippet: str = ""
    highlights: Sequence[Highlight] = ()

    @property
    def cursor(self) -> str:
        """Where a page that ends with this hit ends (made only when asked for)."""
        return encode_cursor(self.score, self.created_at, self.id)


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int


@dataclass(frozen=True)
class Facet:
    field: str  # type, tag or status
    values: Sequence[FacetValue]


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: Sequence[SearchHit]
    facets: Sequence[Facet]
    has_next_page: bool
    did_you_mean: str | None = None
    # The query the hits answer: the corrected one when the typed one found nothing.
    query: str = ""
    corrected: bool = False
    types: Sequence[SearchType] = field(default_factory=list)

    @property
    def end_cursor(self) -> str | None:
        return self.hits[-1].cursor if self.hits else None


@dataclass(frozen=True)
class Suggestion:
    text: str
    type: SearchType
    id: uuid.UUID  # the newest row that offers it
    field: str = "name"  # name, key, tag, capability or subject
