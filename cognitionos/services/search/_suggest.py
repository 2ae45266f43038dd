"""As-you-type completions, read from ``search_suggestions`` (migration 0010).

Every completion a row offers (a workflow's name, key and tags, an agent's name and
capabilities, an execution's workflow key, a notification's subject) is kept by triggers,
once per term: its words from each of its first words on. What was typed, normalized the
same way, is a prefix of a term, so a lookup is a range of the table's primary key, read in
order and cut at a LIMIT, for each (audience, type, head or tail) it may see: bounded work
however short the prefix and however many rows there are. Rights are the audience in that
key: a member reads the shared rows and their own, never another member's.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cognitionos.db.rows import fetch_numbered, numbered
from cognitionos.services.auth import Principal
from cognitionos.services.search._input import (
    check_types,
    parse_query,
    suggestion_limit,
    words_of,
)
from cognitionos.services.search._types import SearchType, Suggestion

__all__ = ["EVERYONE", "NOBODY", "suggest"]

EVERYONE = uuid.UUID(int=0)  # workflows and agents: shared
NOBODY = uuid.UUID(int=(1 << 128) - 1)  # an execution whose member was deleted: admins only
TERM_MAX = 200  # characters, as the migration cuts terms

# Whose rows of each type a member may see.
_SHARED = (SearchType.WORKFLOW, SearchType.AGENT)
_OWNED = (SearchType.EXECUTION, SearchType.NOTIFICATION)
_FIELDS = ("name", "key", "tag", "capability", "subject")

_COLUMNS = "type, id, label, field, tail, created_at"


def _member_branch(kind: SearchType, tail: bool) -> str:
    audience = ":everyone" if kind in _SHARED else ":me"
    return f"""(SELECT {_COLUMNS} FROM search_suggestions
    WHERE audience = {audience} AND type = '{kind.value}' AND tail = {tail}
        AND term >= :low AND term < :high
    ORDER BY term LIMIT :k)"""  # noqa: S608 (fixed fragments)


def _admin_branch(kind: SearchType, tail: bool) -> str:
    # Every audience: the same completion once (for instance, one subject many members got).
    return f"""(SELECT DISTINCT ON (term, field, label) {_COLUMNS} FROM search_suggestions
    WHERE type = '{kind.value}' AND tail = {tail} AND term >= :low AND term < :high
    ORDER BY term, field, label, created_at DESC LIMIT :k)"""  # noqa: S608 (fixed fragments)


@functools.lru_cache(maxsize=256)
def _statement(types: tuple[SearchType, ...], admin: bool) -> str | None:
    branch = _admin_branch if admin else _member_branch
    parts = [branch(t, tail) for t in types if t in _SHARED + _OWNED for tail in (False, True)]
    return "\nUNION ALL\n".join(parts) or None


def _upper(low: str) -> str:
    """The first string after every string that starts with ``low`` (in code point order,
    which is the byte order of UTF-8: the terms' collation is "C")."""
    following = ord(low[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # no surrogates in UTF-8
        following = 0xE000
    return low[:-1] + chr(following)


async def suggest(
    reader: async_sessionmaker[AsyncSession],
    *,
    principal: Principal,
    prefix: str,
    types: Sequence[SearchType] | None = None,
    limit: int | None = None,
) -> list[Suggestion]:
    """Completions of what is typed so far: every word typed, in order, the last one as a
    prefix, from any word of a name, key, tag, capability, execution's workflow key or
    (your own) notification subject. Those that start with what was typed come first, then
    the shortest, then the newest; each completion once per type."""
    parsed = parse_query(prefix, field="prefix")
    kinds = check_types(types)
    size = suggestion_limit(limit)
    sql = _statement(kinds, principal.is_admin)
    if sql is None:
        return []
    low = " ".join(parsed.words)[:TERM_MAX]
    params = {
        "low": low,
        "high": _upper(low),
        "everyone": EVERYONE,
        "me": principal.user_id,
        "k": size * 2,  # room for completions that say the same
    }
    async with reader() as session:
        rows = await fetch_numbered(session, numbered(sql), params)
    return _ranked(rows, size)


def _ranked(
    rows: Sequence[tuple[str, uuid.UUID, str, str, bool, datetime]], size: int
) -> list[Suggestion]:
    ordered = sorted(
        rows,
        key=lambda r: (r[4], len(r[2]), -r[5].timestamp(), _FIELDS.index(r[3]), r[2], r[0]),
    )
    seen: set[tuple[str, str]] = set()
    out: list[Suggestion] = []
    for type_, id_, label, field, _tail, _at in ordered:
        # "Nightly digest" and "nightly-digest" say the same to someone typing.
        said = (type_, " ".join(words_of(label)))
        if said in seen:
            continue
        seen.add(said)
        out.append(Suggestion(text=label, type=SearchType(type_), id=id_, field=field))
        if len(out) == size:
            break
    return out
