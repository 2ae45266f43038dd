"""Search across workflows, executions, agents, memories and notifications, authorized in
SQL: a row the asker may not see is never matched, so it
shows in no hit, snippet, total, facet count or correction."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos._json import loads
from cognitionos.db.rows import Numbered, fetch_numbered, numbered
from cognitionos.services.auth import Principal
from cognitionos.services.search._input import (
    Cursor,
    Query,
    check_filter,
    check_types,
    decode_cursor,
    page_size,
    parse_query,
)
from cognitionos.services.search._sql import match_statement
from cognitionos.services.search._types import (
    Facet,
    FacetValue,
    Highlight,
    SearchFilter,
    SearchHit,
    SearchResult,
    SearchType,
)
from cognitionos.services.search._typos import correct

__all__ = ["search"]

# Fewer hits than this and a query with unknown words is corrected.
FEW = 3
_FACET_ORDER = ("type", "tag", "status")
_FIELD_ORDER = ("title", "key", "tags", "capabilities", "role", "status", "metadata")


@dataclass(frozen=True)
class _Match:
    query: Query
    page: list[SearchHit]
    has_next_page: bool
    total: int
    facets: list[Facet]


def _initials(first: str) -> list[int]:
    """The codes of the characters a title may start with to lower-case to ``first``
    (titles starting with any other character beyond ASCII are checked by lower())."""
    forms = {first, first.upper(), first.title()}
    return sorted(ord(c) for c in forms if len(c) == 1)


# Workflows and agents (everyone's, and the only types with tags) are matched apart from the
# asker's own executions, memories and notifications: two statements on two connections at
# once, so a broad query's two halves take the time of the larger one. Both apply the same
# cursor and keep the same order, so the merged page is exact; counts add up, and the tag
# facet (top 20) comes whole from the first group.
_GROUPS = (
    (SearchType.WORKFLOW, SearchType.AGENT),
    (SearchType.EXECUTION, SearchType.MEMORY, SearchType.NOTIFICATION),
)


def _params(
    query: Query, f: SearchFilter, principal: Principal, limit: int, cursor: Cursor | None
) -> dict[str, Any]:
    lowered = query.text.lower()
    params: dict[str, Any] = {
        "plain": query.plain,
        "words": len(query.words),
        "lowered": lowered,
        "n": len(lowered),
        "initials": _initials(lowered[0]),
        "me": principal.user_id,
        "limit": limit + 1,
    }
    if query.id_range is not None:
        params["id_low"], params["id_high"] = query.id_range
    if f.tags:
        params["tags"] = list(f.tags)
    if f.status:
        params["status"] = list(f.status)
    if f.created_after:
        params["created_after"] = f.created_after
    if f.created_before:
        params["created_before"] = f.created_before
    if cursor is not None:
        params.update(
            after_score=cursor.score, after_created_at=cursor.created_at, after_id=cursor.id
        )
    return params


async def _part(
    reader: async_sessionmaker[AsyncSession],
    statement: Numbered,
    params: dict[str, Any],
    hits: list[SearchHit],
    counts: dict[str, dict[str, int]],
) -> None:
    """One group's page (dressed) and facet counts, added to ``hits`` and ``counts``."""
    async with reader() as session:
        rows = await fetch_numbered(session, statement, params)
    for kind, value, id_, created_at, score, n, title, snippet, hl in rows:
        if kind != "hit":
            counts[kind][value] = counts[kind].get(value, 0) + n
            continue
        hit = SearchHit(type=SearchType(value), id=id_, created_at=created_at, score=score)
        if isinstance(hl, str):  # a connection without the JSONB codec
            hl = loads(hl)
        hits.append(_dressed(hit, title or "", snippet or "", hl or {}))


async def _match(
    reader: async_sessionmaker[AsyncSession],
    query: Query,
    types: tuple[SearchType, ...],
    f: SearchFilter,
    *,
    principal: Principal,
    limit: int,
    cursor: Cursor | None,
) -> _Match:
    statements = [
        numbered(sql)
        for group in _GROUPS
        if (
            sql := match_statement(
                tuple(t for t in group if t in types),
                f,
                admin=principal.is_admin,
                id_range=query.id_range is not None,
                cursor=cursor is not None,
            )
        )
    ]
    if not statements:
        return _Match(query, [], False, 0, [])
    params = _params(query, f, principal, limit, cursor)
    hits: list[SearchHit] = []
    counts: dict[str, dict[str, int]] = {name: {} for name in _FACET_ORDER}
    await asyncio.gather(*(_part(reader, sql, params, hits, counts) for sql in statements))
    hits.sort(key=lambda h: (h.score, h.created_at, h.id), reverse=True)
    facets = [
        Facet(
            field=name,
            values=[
                FacetValue(value=value, count=n)
                for value, n in sorted(counts[name].items(), key=lambda vn: (-vn[1], vn[0]))
            ],
        )
        for name in _FACET_ORDER
    ]
    total = sum(counts["type"].values())
    return _Match(query, hits[:limit], len(hits) > limit, total, facets)


def _marked(value: str | None) -> str:
    """ts_headline's output (matches between \\x02 and \\x03) as escaped HTML with <mark>."""
    escaped = html.escape(value or "", quote=False)
    return escaped.replace("\x02", "<mark>").replace("\x03", "</mark>")


def _dressed(hit: SearchHit, title: str, snippet: str, hl: Mapping[str, str]) -> SearchHit:
    """The hit with its title, snippet and the highlights that mark a match."""
    highlights = [
        Highlight(field=name, text=_marked(value))
        for name, value in sorted(hl.items(), key=lambda kv: _FIELD_ORDER.index(kv[0]))
        if value and "\x02" in value
    ]
    marked = _marked(snippet) or (highlights[0].text if highlights else html.escape(title))
    return replace(hit, title=title, snippet=marked, highlights=highlights)


async def search(
    reader: async_sessionmaker[AsyncSession],
    *,
    principal: Principal,
    query: str,
    types: Sequence[SearchType] | None = None,
    filter: SearchFilter | None = None,
    first: int | None = None,
    after: str | None = None,
) -> SearchResult:
    """Ranked hits after ``after``, the total and facets over the whole match, and a
    correction when the query as typed finds fewer than a few."""
    parsed = parse_query(query)
    kinds = check_types(types)
    f = check_filter(filter)
    limit = page_size(first)
    cursor = decode_cursor(after)
    found = await _match(reader, parsed, kinds, f, principal=principal, limit=limit, cursor=cursor)
    did_you_mean: str | None = None
    corrected = False
    if found.total < FEW:
        async with reader() as session:
            alternative = await correct(session, parsed)
        if alternative is not None:
            retry = await _match(
                reader, alternative, kinds, f, principal=principal, limit=limit, cursor=cursor
            )
            if retry.total > found.total:
                did_you_mean = alternative.text
                if found.total == 0:
                    found, corrected = retry, True
    return SearchResult(
        total=found.total,
        hits=found.page,
        facets=found.facets,
        has_next_page=found.has_next_page,
        did_you_mean=did_you_mean,
        query=found.query.text,
        corrected=corrected,
        types=list(kinds),
    )
