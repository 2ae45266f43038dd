"""Typo correction: words nobody has written, replaced by the closest word someone has.

The vocabulary (``search_terms``) holds words from every row, the asker's or not, so a
correction is only a candidate: the caller offers it only when the corrected query finds
rows the asker may see (those rows contain the corrected words, so nothing leaks).

The lookup rides along with a search's own statement (``CLOSEST``: ``fix`` rows), so a
query with a typo waits for no lookup of its own before it is corrected.
"""

from __future__ import annotations

from collections.abc import Mapping

from cognitionos.services.search._input import Query

__all__ = ["CLOSEST", "correctable", "correction"]

# pg_trgm's ``%`` (similarity above pg_trgm.similarity_threshold, 0.3 by default) is what
# the trigram index answers; the closest one wins, ties by the shorter word. A known word
# costs one index probe. The words come as one space-separated text: a set-returning
# function over it is estimated alike whatever the value, so the statement keeps its
# generic plan (an array parameter would be estimated by its length in a custom plan,
# and PostgreSQL would then plan the whole statement again on every call).
CLOSEST = """SELECT 'fix', w.word, NULL, NULL, NULL, NULL, c.term::text, NULL, NULL
FROM regexp_split_to_table(:fix_words, ' ') AS w(word)
JOIN LATERAL (
    SELECT t.term FROM search_terms t
    WHERE t.term % w.word AND NOT EXISTS (SELECT 1 FROM search_terms k WHERE k.term = w.word)
    ORDER BY similarity(t.term, w.word) DESC, length(t.term), t.term
    LIMIT 1
) AS c ON true
WHERE w.word <> ''"""


def correctable(query: Query) -> str:
    """The query's words a correction may replace, space-separated."""
    return " ".join(w for w in query.words if 3 <= len(w) <= 40 and w.isalpha())


def correction(query: Query, closest: Mapping[str, str]) -> Query | None:
    """The query with each unknown word replaced by its closest known one (``closest``,
    from ``fix`` rows); None when no word is unknown or none has a close neighbour."""
    if not closest:
        return None
    return query.with_words([closest.get(w, w) for w in query.words])
