"""workflows' search index in two shards, so a member's search shares them between its statements

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 09:00:00.000000

A member's search runs two statements at once, one on each connection: workflows and
agents (everyone's) in one, the member's own executions, memories and notifications in the
other. Workflows are most of a broad match, so the first statement took all of the time and
the second was soon done. Each workflow key now falls in a shard (0-9, a hash of the key)
and the workflows' search index is two partial indexes, shards 0-7 and shards 8-9: the
first statement matches the first part, the second statement the rest beside the member's
own rows, each reading only its own index. An admin's statement matches both (its other
statement already holds every member's rows).

The shard is the key's, so every version of a key is in the same one: the newest matching
version of a key is decided by one statement, on one snapshot (the two statements' snapshots
may differ by a commit). It is an expression of the index predicates, not a column, so
nothing rewrites the table, and a search statement names the same expression
(``services/search/_sql.py``, ``Shard``): PostgreSQL uses a partial index only for a WHERE
that implies its predicate, and does not evaluate it again for each row.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# hashtextextended is immutable and kept stable across PostgreSQL versions (hash partitions
# depend on it).
SHARD = "abs(hashtextextended(key, 0) % 10)"
# fastupdate off, as every search index (migration 0008).
INDEXES = (
    "CREATE INDEX ix_workflows_search_first ON workflows USING gin (search_tsv) "
    f"WITH (fastupdate = off) WHERE {SHARD} < 8",
    "CREATE INDEX ix_workflows_search_rest ON workflows USING gin (search_tsv) "
    f"WITH (fastupdate = off) WHERE {SHARD} >= 8",
)


def upgrade() -> None:
    for index in INDEXES:
        op.execute(index)
    op.execute("DROP INDEX ix_workflows_search")


def downgrade() -> None:
    op.execute(
        "CREATE INDEX ix_workflows_search ON workflows USING gin (search_tsv) "
        "WITH (fastupdate = off)"
    )
    op.execute("DROP INDEX ix_workflows_search_first, ix_workflows_search_rest")
