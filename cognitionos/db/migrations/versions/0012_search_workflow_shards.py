"""workflows' search index in two shards, so a member's search shares them between its statements

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 09:00:00.000000

A member's search runs two statements at once, one on each connection: workflows and
agents (everyone's) in one, the member's own executions, memories and notifications in the
other. Workflows are most of a broad match, so the first statement took all of the time and
the second was soon done. Each workflow now has a shard (0-9, from the last byte of its
random id) and the search index is two partial indexes, shards 0-7 and shards 8-9: the
first statement matches the first part, the second statement the rest beside the member's
own rows, each reading only its own part of the index. An admin's statement matches both
(the other statement already holds every member's rows).

``search_shard`` is generated, so adding it rewrites the table once (which also leaves it
without the dead rows of earlier backfills). The predicates below are the search's own
(``services/search/_sql.py``, ``SHARDS``): a statement uses a partial index only when its
WHERE says the same.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Each workflow's shard, from the last byte of its id (random in a uuid4).
COLUMN = (
    "ALTER TABLE workflows ADD COLUMN search_shard smallint "
    "GENERATED ALWAYS AS (get_byte(uuid_send(id), 15) % 10) STORED"
)
# fastupdate off, as every search index (migration 0008).
INDEXES = (
    "CREATE INDEX ix_workflows_search_first ON workflows USING gin (search_tsv) "
    "WITH (fastupdate = off) WHERE search_shard < 8",
    "CREATE INDEX ix_workflows_search_rest ON workflows USING gin (search_tsv) "
    "WITH (fastupdate = off) WHERE search_shard >= 8",
)


def upgrade() -> None:
    op.execute("DROP INDEX ix_workflows_search")
    op.execute(COLUMN)
    for index in INDEXES:
        op.execute(index)
    op.execute("ANALYZE workflows")


def downgrade() -> None:
    op.execute("DROP INDEX ix_workflows_search_first")
    op.execute("DROP INDEX ix_workflows_search_rest")
    op.execute("ALTER TABLE workflows DROP COLUMN search_shard")
    op.execute(
        "CREATE INDEX ix_workflows_search ON workflows USING gin (search_tsv) "
        "WITH (fastupdate = off)"
    )
