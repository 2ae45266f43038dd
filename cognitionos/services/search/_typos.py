"""Typo correction: words nobody has written, replaced by the closest word someone has.

The vocabulary (``search_terms``) holds words from every row, the asker's or not, so a
correction is only a candidate: the caller offers it only when the corrected query finds
rows the asker may see (those rows contain the corrected words, so nothing leaks).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.services.search._input import Query

__all__ = ["correct"]

# pg_trgm's ``%`` (similarity above pg_trgm.similarity_threshold, 0.3 by default) is what
# the trigram index answers; the closest one wins, ties by the shorter word.
_CLOSEST = text(
    """
    SELECT w.word, c.term
    FROM unnest(CAST(:words AS text[])) WITH ORDINALITY AS w(word, i)
    LEFT JOIN LATERAL (
        SELECT t.term FROM search_terms t
        WHERE t.term % w.word AND NOT EXISTS (SELECT 1 FROM search_terms k WHERE k.term = w.word)
        ORDER BY similarity(t.term, w.word) DESC, length(t.term), t.term
        LIMIT 1
    ) AS c ON true
    ORDER BY w.i
    """
)


def _correctable(word: str) -> bool:
    return 3 <= len(word) <= 40 and word.isalpha()


async def correct(session: AsyncSession, query: Query) -> Query | None:
    """The query with each unknown word replaced by its closest known one; None when no
    word is unknown or none has a close neighbour."""
    asked = [w for w in query.words if _correctable(w)]
    if not asked:
        return None
    rows = (await session.execute(_CLOSEST, {"words": asked})).all()
    closest = {word: term for word, term in rows if term is not None}
    if not closest:
        return None
    return query.with_words([closest.get(w, w) for w in query.words])
