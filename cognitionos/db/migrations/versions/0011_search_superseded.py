"""search_superseded_workflows: the workflow versions that a higher version of their key follows

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:00:00.000000

Search shows one hit per workflow key, its newest matching version. Sorting every match
by key to find it (DISTINCT ON) cost a broad search more than ranking it; with this set a
version that no other follows is its key's hit whenever it matches, and only the few
superseded ones are checked for a newer matching version. Versions are ordered as search
orders them: major, minor, patch, release after pre-release, then the newest row, then id.

A trigger keeps the set in the writing transaction, one key at a time (an advisory lock on
the key, so two versions written at once cannot both count as the newest).
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLE = """
CREATE TABLE search_superseded_workflows (
    id uuid PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE
)
"""

RECOUNT = """
CREATE FUNCTION search_supersede(_key text) RETURNS void
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('search_superseded:' || _key, 0));
    WITH versions AS (
        SELECT w.id, row_number() OVER (ORDER BY w.major DESC, w.minor DESC, w.patch DESC,
            w.is_release DESC, w.created_at DESC, w.id DESC) AS place
        FROM workflows w WHERE w.key = _key
    ), newest AS (
        DELETE FROM search_superseded_workflows s USING versions v
        WHERE s.id = v.id AND v.place = 1
    )
    INSERT INTO search_superseded_workflows (id)
    SELECT v.id FROM versions v WHERE v.place > 1
    ON CONFLICT DO NOTHING;
END
$$
"""

TRIGGER = """
CREATE FUNCTION search_supersede_trigger() RETURNS trigger
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM search_supersede(OLD.key);
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.key IS DISTINCT FROM OLD.key) THEN
        PERFORM search_supersede(NEW.key);
    END IF;
    RETURN NULL;
END
$$
"""

BACKFILL = """
INSERT INTO search_superseded_workflows (id)
SELECT v.id FROM (
    SELECT w.id, row_number() OVER (PARTITION BY w.key ORDER BY w.major DESC, w.minor DESC,
        w.patch DESC, w.is_release DESC, w.created_at DESC, w.id DESC) AS place
    FROM workflows w
) AS v
WHERE v.place > 1
"""


def upgrade() -> None:
    op.execute(TABLE)
    op.execute(RECOUNT)
    op.execute(TRIGGER)
    for function in ("search_supersede(text)", "search_supersede_trigger()"):
        op.execute(f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER search_supersede AFTER INSERT OR DELETE "
        "OR UPDATE OF key, major, minor, patch, is_release, created_at ON workflows "
        "FOR EACH ROW EXECUTE FUNCTION search_supersede_trigger()"
    )
    op.execute(BACKFILL)
    op.execute("ANALYZE search_superseded_workflows")


def downgrade() -> None:
    op.execute("DROP TRIGGER search_supersede ON workflows")
    op.execute("DROP FUNCTION search_supersede_trigger()")
    op.execute("DROP FUNCTION search_supersede(text)")
    op.execute("DROP TABLE search_superseded_workflows")
