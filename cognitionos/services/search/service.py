"""Search across workflows, executions, agents, memories and notifications, authorized in
SQL: a row the asker may not see is never matched, so it
shows in no hit, snippet, total, facet count or correction."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
from cognitionos.services.search._sql import (
    BOTH,
    TAG_FACET_SIZE,
    Shard,
    counts_tags,
    match_statement,
)
from cognitionos.services.search._types import (
    Facet,
    FacetValue,
    Highlight,
    SearchFilter,
    SearchHit,
    SearchResult,
    SearchType,
)
from cognitionos.services.search._typos import correctable, correction

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
    fixes: dict[str, str]  # unknown word -> closest known word (asked for on the first match)


def _initials(first: str) -> list[int]:
    """The codes of the characters a title may start with to lower-case to ``first``
    (titles starting with any other character beyond ASCII are checked by lower())."""
    forms = {first, first.upper(), first.title()}
    return sorted(ord(c) for c in forms if len(c) == 1)


# Two statements on two connections at once, so a broad query takes the time of the larger
# one. A member's: everyone's workflows and agents in one, their own executions, memories
# and notifications in the other; workflows are most of a broad match and a member's own
# rows few, so the second also takes the workflows of the smaller shard (a fifth; migration
# 0012). An admin's: every member's executions and memories are most of a broad match, so
# they are one statement, and workflows (both shards), agents and notifications the other.
# Both apply the same cursor and keep the same order, so the merged page is exact; counts
# add up (each workflow is in one shard), and when both count tags, each sends every tag
# and the sums decide which come first.
_W, _A = SearchType.WORKFLOW, SearchType.AGENT
_E, _M, _N = SearchType.EXECUTION, SearchType.MEMORY, SearchType.NOTIFICATION
_MEMBER_GROUPS = (((_W, _A), (Shard.FIRST,)), ((_W, _E, _M, _N), (Shard.REST,)))
_ADMIN_GROUPS = (((_W, _A, _N), BOTH), ((_E, _M), BOTH))


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
    rows: list[Any],
    counts: dict[str, dict[str, int]],
    closest: dict[str, str],
) -> None:
    """One group's page rows (dressed in SQL) added to ``rows``, its facet counts to
    ``counts``, the closest known word of each unknown one to ``closest``."""
    async with reader() as session:
        found = await fetch_numbered(session, statement, params)
    for row in found:
        kind, value, n = row[0], row[1], row[5]
        if kind == "hit":
            rows.append(row)
        elif kind == "fix":
            closest[value] = row[6]
        elif kind == "type":  # counted by type and status at once
            counts["type"][value] = counts["type"].get(value, 0) + n
            if row[6] is not None:
                counts["status"][row[6]] = counts["status"].get(row[6], 0) + n
        else:
            counts[kind][value] = counts[kind].get(value, 0) + n


async def _match(
    reader: async_sessionmaker[AsyncSession],
    query: Query,
    types: tuple[SearchType, ...],
    f: SearchFilter,
    *,
    principal: Principal,
    limit: int,
    cursor: Cursor | None,
    fixes: bool = False,
) -> _Match:
    """The page, counts and facets of ``query``; with ``fixes``, the closest known word of
    each unknown one too, looked up by the last statement (no round trip of its own)."""
    groups = [
        (tuple(t for t in group if t in types), shards)
        for group, shards in (_ADMIN_GROUPS if principal.is_admin else _MEMBER_GROUPS)
    ]
    # When both statements count tags, each sends every tag: the sums decide the top ones.
    every_tag = sum(counts_tags(group, f) for group, _ in groups) > 1

    def statement(
        group: tuple[SearchType, ...], shards: tuple[Shard, ...], with_fixes: bool = False
    ) -> str | None:
        return match_statement(
            group,
            f,
            admin=principal.is_admin,
            id_range=query.id_range is not None,
            cursor=cursor is not None,
            shards=shards,
            every_tag=every_tag,
            fixes=with_fixes,
        )

    sqls = [statement(*group) for group in groups]
    present = [i for i, sql in enumerate(sqls) if sql is not None]
    if fixes and present:
        sqls[present[-1]] = statement(*groups[present[-1]], with_fixes=True)
    statements = [numbered(sql) for sql in sqls if sql is not None]
    if not statements:
        return _Match(query, [], False, 0, [], {})
    params = _params(query, f, principal, limit, cursor)
    params["fix_words"] = correctable(query) if fixes else ""
    rows: list[Any] = []
    counts: dict[str, dict[str, int]] = {name: {} for name in _FACET_ORDER}
    closest: dict[str, str] = {}
    await asyncio.gather(*(_part(reader, sql, params, rows, counts, closest) for sql in statements))
    # Each group sent its own first page, dressed; only the merged page becomes hits.
    rows.sort(key=lambda r: (r[4], r[3], r[2]), reverse=True)
    facets = [
        Facet(
            field=name,
            values=[
                FacetValue(value=value, count=n)
                for value, n in sorted(counts[name].items(), key=lambda vn: (-vn[1], vn[0]))[
                    : TAG_FACET_SIZE if name == "tag" else None
                ]
            ],
        )
        for name in _FACET_ORDER
    ]
    total = sum(counts["type"].values())
    page = [_hit(row) for row in rows[:limit]]
    return _Match(query, page, len(rows) > limit, total, facets, closest)


def _marked(value: str | None) -> str:
    """ts_headline's output (matches between \\x02 and \\x03) as escaped HTML with <mark>."""
    escaped = html.escape(value or "", quote=False)
    return escaped.replace("\x02", "<mark>").replace("\x03", "</mark>")


def _hit(row: Any) -> SearchHit:
    """A page row as a hit with its title, snippet and the highlights that mark a match."""
    _, value, id_, created_at, score, _, title, snippet, hl = row  # hl: JSONB, decoded
    highlights = [
        Highlight(field=name, text=_marked(text))
        for name, text in sorted((hl or {}).items(), key=lambda kv: _FIELD_ORDER.index(kv[0]))
        if text and "\x02" in text
    ]
    title = title or ""
    marked = _marked(snippet) or (highlights[0].text if highlights else html.escape(title))
    return SearchHit(
        type=SearchType(value),
        id=id_,
        created_at=created_at,
        score=score,
        title=title,
        snippet=marked,
        highlights=highlights,
    )


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
    found = await _match(
        reader, parsed, kinds, f, principal=principal, limit=limit, cursor=cursor, fixes=True
    )
    did_you_mean: str | None = None
    corrected = False
    if found.total < FEW:
        alternative = correction(parsed, found.fixes)
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
