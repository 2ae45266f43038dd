"""The search statements, assembled from fixed fragments: every value is a bind parameter.

A statement finds its part of the match (its types' rows the asker may see, with their
score), and returns the page after the cursor, dressed (titles, snippets and highlights by
``ts_headline``, for the page's rows only), and the facet counts over all of its part.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import UTC, datetime

from cognitionos.services.search._types import SearchFilter, SearchType
from cognitionos.services.search._typos import CLOSEST

__all__ = ["BOTH", "TAG_FACET_SIZE", "TYPES", "Shard", "counts_tags", "match_statement"]

# The query, parsed once: every branch and every row's rank reads it from here.
_Q = """q AS MATERIALIZED (
    SELECT plainto_tsquery('english', :plain) AS q,
           phraseto_tsquery('english', :plain) AS phrase,
           :words > 1 AS multi
)"""

# Ranking, the same for every type: see README "Search". Weights {D, C, B, A}.
_WEIGHTS = "'{0.1, 0.2, 0.4, 1.0}'"
_MEMORY_WEIGHTS = "'{0.2, 0.2, 0.4, 1.0}'"  # memories' content has no weight: it is a body
_NO_TAGS = "NULL::varchar[]"  # unnested, no row
TAG_FACET_SIZE = 20


class Shard(enum.Enum):
    """Which workflows a branch matches: each key is in one of two shards, each with its own
    partial search index (migration 0012, whose predicates these are: a branch over both
    would scan the table, so a statement over both has a branch for each)."""

    FIRST = "abs(hashtextextended(w.key, 0) % 10) < 8"
    REST = "abs(hashtextextended(w.key, 0) % 10) >= 8"


BOTH = (Shard.FIRST, Shard.REST)


def _title_boost(titles: list[str]) -> str:
    """+0.6 when a title is the query, +0.3 when it starts with it. The first character's
    code (no copy, no case mapping) rules out most titles before lower() of the first :n
    characters (lower maps character to character) decides."""
    starts = " OR ".join(
        f"((ascii({t}) > 127 OR ascii({t}) = ANY(:initials)) AND lower(left({t}, :n)) = :lowered)"
        for t in titles
    )
    exact = " OR ".join(f"(char_length({t}) = :n AND lower({t}) = :lowered)" for t in titles)
    return f"CASE WHEN {starts} THEN CASE WHEN {exact} THEN 0.6::float8 ELSE 0.3 END ELSE 0 END"


def _score(doc: str, titles: list[str], weights: str = _WEIGHTS) -> str:
    # The constants are float8: numeric ones would each be converted (through text) on
    # every row.
    score = f"""ts_rank({weights}, {doc}, q.q, 1)
        + CASE WHEN q.multi AND {doc} @@ q.phrase THEN 0.5::float8 ELSE 0 END"""
    if titles:
        score += f"\n        + {_title_boost(titles)}"
    return f"({score})::float8"


def _filters(a: str, tags: str | None, status: str | None, f: SearchFilter) -> list[str]:
    where = []
    if f.tags:
        where.append(f"{tags} @> CAST(:tags AS varchar[])")
    if f.status:
        where.append(f"{status} = ANY(CAST(:status AS text[]))")
    if f.created_after:
        where.append(f"{a}.created_at >= :created_after")
    if f.created_before:
        where.append(f"{a}.created_at < :created_before")
    return where


# One hit per workflow key, its newest matching version: a version no other follows is
# its key's hit; a superseded one only when no newer version matches (migration 0011).
_NEWEST_MATCHING = """(NOT (w.id IN (SELECT s.id FROM search_superseded_workflows s))
            OR NOT EXISTS (
                SELECT 1 FROM workflows v
                WHERE v.key = w.key AND v.search_tsv @@ q.q {filters}
                    AND (v.major, v.minor, v.patch, v.is_release, v.created_at, v.id)
                        > (w.major, w.minor, w.patch, w.is_release, w.created_at, w.id)))"""


@dataclass(frozen=True)
class _Type:
    table: str
    alias: str
    doc: str  # the tsvector matched and ranked
    titles: list[str]
    tags: str | None = None  # a varchar[] column, for the tag facet and filter
    status: str | None = None
    owner: str | None = None  # non-admins see only their own rows
    weights: str = _WEIGHTS
    extra_where: str = ""
    versioned: bool = False  # workflows: one hit per key, and in shards

    def branch(
        self,
        kind: SearchType,
        f: SearchFilter,
        *,
        admin: bool,
        id_range: bool,
        tagged: bool,
        shard: Shard | None,
    ) -> str:
        """The rows of this type in the match (of a versioned type, those in ``shard``);
        with ``tagged``, their tags too (for the tag facet of a statement that matches a
        type with tags)."""
        a = self.alias
        match = f"{self.doc} @@ q.q"
        score = _score(self.doc, self.titles, self.weights)
        if id_range:
            match = f"({match} OR {a}.id BETWEEN :id_low AND :id_high)"
            score = f"({score} + CASE WHEN {a}.id BETWEEN :id_low AND :id_high THEN 2 ELSE 0 END)"
        where = [match]
        if shard is not None:
            where.append(shard.value)
        if self.owner and not admin:
            where.append(self.owner)
        if self.extra_where:
            where.append(self.extra_where)
        where += _filters(a, self.tags, self.status, f)
        if self.versioned:
            newer = _filters("v", "v.tags", None, f)
            where.append(_NEWEST_MATCHING.format(filters="".join(f"AND {w} " for w in newer)))
        tags = f"{self.tags or _NO_TAGS} AS tags, " if tagged else ""
        status = f"{self.status}::text" if self.status else "NULL::text"
        return f"""SELECT '{kind.value}'::text AS type, {a}.id, {a}.created_at,
            {score} AS score, {tags}{status} AS status
        FROM {self.table} {a} CROSS JOIN q
        WHERE {" AND ".join(where)}"""  # noqa: S608 (fixed fragments)

    def supports(self, f: SearchFilter) -> bool:
        return (not f.tags or self.tags is not None) and (not f.status or self.status is not None)


TYPES: dict[SearchType, _Type] = {
    SearchType.WORKFLOW: _Type(
        table="workflows",
        alias="w",
        doc="w.search_tsv",
        titles=["w.name", "w.key"],
        tags="w.tags",
        versioned=True,
    ),
    SearchType.EXECUTION: _Type(
        table="workflow_executions",
        alias="e",
        doc="e.search_tsv",
        titles=[],  # the workflow's name is in the vector (weight A)
        status="e.status",
        owner="e.created_by = :me",
    ),
    SearchType.AGENT: _Type(
        table="agents",
        alias="a",
        doc="a.search_tsv",
        titles=["a.name"],
        tags="a.capabilities",
        status="a.status",
    ),
    SearchType.MEMORY: _Type(
        table="memories",
        alias="m",
        doc="m.search_tsv",  # content and metadata values (migration 0013)
        titles=["m.content"],
        owner="(m.scope = 'GLOBAL' OR m.owner_id = :me)",
        weights=_MEMORY_WEIGHTS,
        extra_where="(m.expires_at IS NULL OR m.expires_at > now())",
    ),
    SearchType.NOTIFICATION: _Type(
        table="notifications",
        alias="n",
        doc="n.search_tsv",
        titles=["n.subject"],
        status="n.status",
        owner="n.user_id = :me",
    ),
}

_FACETS = """
UNION ALL
SELECT 'type', type, NULL, NULL, NULL, count(*), status, NULL::text, NULL::jsonb
FROM m GROUP BY type, status"""
# Only where a type has tags: a row without any adds nothing, but the pass over the match
# would still be made. Every tag when another statement counts tags too (the sums decide
# which come first); else only the first ones.
_TAG_FACET = """
UNION ALL (
    SELECT 'tag', t, NULL, NULL, NULL, count(*), NULL::text, NULL::text, NULL::jsonb
    FROM (SELECT unnest(tags) AS t FROM m) AS tagged
    GROUP BY t{limit}
)"""


_SOME = datetime(2000, 1, 1, tzinfo=UTC)


def counts_tags(types: tuple[SearchType, ...], f: SearchFilter) -> bool:
    """Whether a statement of ``types`` matches a type with tags (and counts the tag facet)."""
    return any(TYPES[t].tags is not None and TYPES[t].supports(f) for t in types)


def match_statement(
    types: tuple[SearchType, ...],
    f: SearchFilter,
    *,
    admin: bool,
    id_range: bool,
    cursor: bool,
    shards: tuple[Shard, ...] = BOTH,
    facets: bool = True,
    every_tag: bool = False,
    fixes: bool = False,
) -> str | None:
    """``(kind, value, id, created_at, score, n, title, snippet, highlights)`` rows: ``hit``
    rows (the page, unsorted, dressed), ``type`` counts per type and status (in the column
    of ``title``: one pass over the match counts both facets), ``tag`` counts (the first
    ``TAG_FACET_SIZE``; with ``every_tag``, all) and, with ``fixes``, a ``fix`` row per
    unknown word with its closest known one. Workflows are those in ``shards``. None:
    no type can match the filter. A statement depends on which filters are set, not on
    their values (bind parameters), so each shape is assembled once."""
    shape = SearchFilter(
        tags=("…",) if f.tags else (),
        status=("…",) if f.status else (),
        created_after=_SOME if f.created_after else None,
        created_before=_SOME if f.created_before else None,
    )
    return _assembled(types, shape, admin, id_range, cursor, shards, facets, every_tag, fixes)


@functools.lru_cache(maxsize=1024)
def _assembled(
    types: tuple[SearchType, ...],
    f: SearchFilter,
    admin: bool,
    id_range: bool,
    cursor: bool,
    shards: tuple[Shard, ...],
    facets: bool,
    every_tag: bool,
    fixes: bool,
) -> str | None:
    matched = [t for t in types if TYPES[t].supports(f)]
    if not matched:
        return None
    tagged = facets and counts_tags(types, f)
    branches = [
        TYPES[t].branch(
            t,
            f,
            admin=admin,
            id_range=id_range and t is SearchType.EXECUTION,
            tagged=tagged,
            shard=shard,
        )
        for t in matched
        for shard in (shards if TYPES[t].versioned else (None,))
    ]
    after = (
        "WHERE (score, created_at, id) < (:after_score, :after_created_at, :after_id)"
        if cursor
        else ""
    )
    union = "\nUNION ALL\n".join(branches)
    dress = "\nUNION ALL\n".join(_DRESS[t] for t in types)
    # Ties in code point order ("C"), as the sums of two statements' counts are cut.
    limit = "" if every_tag else f' ORDER BY count(*) DESC, t COLLATE "C" LIMIT {TAG_FACET_SIZE}'
    return f"""WITH {_Q},
m AS MATERIALIZED ({union}),
page AS MATERIALIZED (
    SELECT type, id, created_at, score FROM m {after}
    ORDER BY score DESC, created_at DESC, id DESC LIMIT :limit
),
dressed AS ({dress})
SELECT 'hit' AS kind, p.type AS value, p.id, p.created_at, p.score, NULL::bigint AS n,
    d.title, d.snippet, d.hl
FROM page p LEFT JOIN dressed d ON d.type = p.type AND d.id = p.id{_FACETS if facets else ""}{
        _TAG_FACET.format(limit=limit) if tagged else ""
    }
{f"UNION ALL ({CLOSEST})" if fixes else ""}"""  # noqa: S608 (fragments)


# Page dressing. \x02 and \x03 mark matches (the text is stripped of them first), so the
# caller can HTML-escape the text and then turn them into <mark> tags.
def _hl(expr: str, *, whole: bool) -> str:
    options = (
        "HighlightAll=true"
        if whole
        else 'MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "'
    )
    return (
        f"ts_headline('english', translate(coalesce({expr}, ''), E'\\x02\\x03', ''), q.q, "
        f"E'StartSel=\\x02, StopSel=\\x03, {options}')"
    )


_DRESS: dict[SearchType, str] = {
    SearchType.WORKFLOW: f"""SELECT 'WORKFLOW' AS type, w.id, w.name AS title,
    {_hl("w.description", whole=False)} AS snippet,
    jsonb_build_object('title', {_hl("w.name", whole=True)}, 'key', {_hl("w.key", whole=True)},
        'tags', {_hl("array_to_string(w.tags, ', ')", whole=True)}) AS hl
FROM workflows w CROSS JOIN q WHERE w.id IN (SELECT id FROM page)""",  # noqa: S608 (fixed fragments)
    SearchType.EXECUTION: f"""SELECT 'EXECUTION' AS type, e.id,
    concat(w.name, ' · ', e.status) AS title, {_hl("e.error", whole=False)} AS snippet,
    jsonb_build_object('title', {_hl("w.name", whole=True)}, 'key', {_hl("w.key", whole=True)},
        'status', {_hl("e.status", whole=True)}) AS hl
FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id CROSS JOIN q
WHERE e.id IN (SELECT id FROM page)""",  # noqa: S608 (fixed fragments)
    SearchType.AGENT: f"""SELECT 'AGENT' AS type, a.id, a.name AS title,
    {_hl("a.description", whole=False)} AS snippet,
    jsonb_build_object('title', {_hl("a.name", whole=True)},
        'capabilities', {_hl("array_to_string(a.capabilities, ', ')", whole=True)},
        'role', {_hl("a.role", whole=True)}) AS hl
FROM agents a CROSS JOIN q WHERE a.id IN (SELECT id FROM page)""",  # noqa: S608 (fixed fragments)
    SearchType.MEMORY: f"""SELECT 'MEMORY' AS type, m.id, left(m.content, 80) AS title,
    {_hl("m.content", whole=False)} AS snippet,
    jsonb_build_object('metadata', {_hl("m.metadata::text", whole=True)}) AS hl
FROM memories m CROSS JOIN q WHERE m.id IN (SELECT id FROM page)""",  # noqa: S608 (fixed fragments)
    SearchType.NOTIFICATION: f"""SELECT 'NOTIFICATION' AS type, n.id,
    coalesce(n.subject, left(n.body, 80)) AS title, {_hl("n.body", whole=False)} AS snippet,
    jsonb_build_object('title', {_hl("n.subject", whole=True)}) AS hl
FROM notifications n CROSS JOIN q WHERE n.id IN (SELECT id FROM page)""",  # noqa: S608 (fixed fragments)
}
