"""Checking what the client sent: the query, the page, the cursor, the filter."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cognitionos.services.errors import BadUserInput
from cognitionos.services.pagination import check_page_size
from cognitionos.services.search._types import SearchFilter, SearchType

__all__ = [
    "MAX_PAGE",
    "MAX_QUERY",
    "MAX_SUGGESTIONS",
    "Cursor",
    "Query",
    "check_filter",
    "check_types",
    "decode_cursor",
    "page_size",
    "parse_query",
    "suggestion_limit",
    "words_of",
]

MAX_QUERY = 200  # characters
MAX_WORDS = 12
MAX_PAGE = 50
MAX_SUGGESTIONS = 20
MAX_TAGS = 20
_WORD = re.compile(r"[^\W_]+")  # letters and digits; _ and punctuation separate words
_ID_PREFIX = re.compile(r"[0-9a-f]{4,8}(?:-[0-9a-f]{0,4}){0,3}(?:-[0-9a-f]{0,12})?")

STATUSES = frozenset(
    {
        # executions
        "PENDING",
        "RUNNING",
        "WAITING",
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
        # agents
        "IDLE",
        "BUSY",
        "ERROR",
        "OFFLINE",
        # notifications
        "QUEUED",
        "SENT",
        "DELIVERED",
        "READ",
        "SUPPRESSED",
    }
)


@dataclass(frozen=True)
class Query:
    text: str  # as typed, trimmed
    words: tuple[str, ...]  # lower case, in order
    # An execution id prefix (hex, dashes allowed): the id range it covers.
    id_range: tuple[uuid.UUID, uuid.UUID] | None = None

    @property
    def plain(self) -> str:
        """The words, space-separated: what plainto_tsquery is given."""
        return " ".join(self.words)

    def with_words(self, words: Sequence[str]) -> Query:
        return Query(text=" ".join(words), words=tuple(words))


def words_of(text: str) -> tuple[str, ...]:
    """Lower-case letters and digits, as typed words are split (and suggestion terms)."""
    return tuple(w.lower() for w in _WORD.findall(text))


def parse_query(raw: str, *, field: str = "query") -> Query:
    text = raw.strip()
    if not text:
        raise BadUserInput(f"{field} is empty: type something to search for", field=field)
    if len(raw) > MAX_QUERY:
        raise BadUserInput(f"{field} is longer than {MAX_QUERY} characters", field=field)
    words = words_of(text)
    if not words:
        raise BadUserInput(f"{field} has no letters or digits to search for", field=field)
    if len(words) > MAX_WORDS:
        raise BadUserInput(f"{field} has more than {MAX_WORDS} words", field=field)
    return Query(text=text, words=words, id_range=_id_range(text.lower()))


def _id_range(text: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    if not _ID_PREFIX.fullmatch(text):
        return None
    digits = text.replace("-", "")
    if len(digits) > 32:
        return None
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def page_size(first: int | None) -> int:
    return check_page_size(first, maximum=MAX_PAGE)


def suggestion_limit(limit: int | None) -> int:
    return check_page_size(limit, default=8, maximum=MAX_SUGGESTIONS, field="limit")


def check_types(types: Sequence[SearchType] | None) -> tuple[SearchType, ...]:
    if types is None:
        return tuple(SearchType)
    if not types:
        raise BadUserInput("types is empty: leave it out to search every type", field="types")
    return tuple(t for t in SearchType if t in set(types))


def check_filter(f: SearchFilter | None) -> SearchFilter:
    if f is None:
        return SearchFilter()
    if len(f.tags) > MAX_TAGS:
        raise BadUserInput(f"at most {MAX_TAGS} tags", field="filter.tags")
    if any(not t.strip() or len(t) > 64 for t in f.tags):
        raise BadUserInput("a tag is empty or longer than 64 characters", field="filter.tags")
    unknown = sorted(set(f.status) - STATUSES)
    if unknown:
        raise BadUserInput(
            f"unknown status {', '.join(unknown[:3])}: one of {', '.join(sorted(STATUSES))}",
            field="filter.status",
        )
    if f.created_after and f.created_before and f.created_after >= f.created_before:
        raise BadUserInput("createdAfter must be before createdBefore", field="filter.createdAfter")
    return f


@dataclass(frozen=True)
class Cursor:
    """Where a page ended, in the hits' order: score, then newest, then id."""

    score: float
    created_at: datetime
    id: uuid.UUID


def decode_cursor(cursor: str | None) -> Cursor | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        score, created, id_ = base64.urlsafe_b64decode(padded).decode().split("|")
        value = float(score)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(score)
        return Cursor(value, datetime.fromisoformat(created), uuid.UUID(id_))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadUserInput("invalid search cursor", field="after") from None
