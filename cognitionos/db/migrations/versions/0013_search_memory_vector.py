"""memories' whole search document in one vector, so a search ranks it without joining two

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 09:00:00.000000

A memory's search document is its content (the ``tsv`` that memory recall reads) and its
metadata's string values (weight B). Migration 0008 kept the metadata apart
(``search_meta``), so a search matched either index and ranked ``tsv || search_meta``: a
new vector built for every matching row (0.4 µs each), a fifth to a quarter of the time of
a broad search over everyone's memories. ``search_tsv`` is that concatenation, generated and
stored with the row, with its own GIN index; ``search_meta`` and its index go.

Adding a stored generated column rewrites the table (under an exclusive lock, as long as
copying the table takes: about a second for the benchmark's 24,000 memories); the content's
vector is then stored twice, once for recall and once for search.
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_BEFORE = "cognitionos.db.migrations.versions.0008_search"  # search_meta, as it built it
# tsv (migration 0004) || search_meta (migration 0008): the same vector, position for
# position.
VECTOR = (
    "to_tsvector('english', content) "
    "|| setweight(jsonb_to_tsvector('english', metadata, '[\"string\"]'), 'B')"
)
COLUMN = f"ALTER TABLE memories ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS ({VECTOR}) STORED"
# fastupdate off, as every search index (migration 0008).
INDEX = (
    "CREATE INDEX ix_memories_search ON memories USING gin (search_tsv) WITH (fastupdate = off)"
)


def upgrade() -> None:
    op.execute("ALTER TABLE memories DROP COLUMN search_meta")  # and its index
    op.execute(COLUMN)
    op.execute(INDEX)


def downgrade() -> None:
    op.execute("ALTER TABLE memories DROP COLUMN search_tsv")
    for statement in importlib.import_module(_BEFORE).MEMORY_META:
        op.execute(statement)
