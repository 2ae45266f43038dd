"""search: weighted full-text vectors kept by triggers, a trigram vocabulary for typos

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 09:00:00.000000

Every searchable table gets a ``search_tsv`` column written by a BEFORE trigger in the
writing transaction (executions need their workflow's key and name, which a generated
column cannot read), with a GIN index. Weights: A = title, key and name, B = tags,
capabilities, role and status, C = the body. Titles and tags are indexed twice, stemmed
(``english``) for search and as typed (``simple``) for as-you-type prefixes.

Memories keep their own ``tsv`` (content) and its index; their metadata's string values get
a generated ``search_meta`` column beside it.

``search_terms`` holds every word seen (lower case, 3 to 40 letters), with a trigram index:
the vocabulary typo corrections are drawn from. It is never shown as is: a correction is
offered only when the corrected query finds rows the asker may see.

The ORM does not map these columns: only the search service reads them, in SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Words in sorted order, so two transactions adding overlapping words lock them in the same
# order (no deadlock); a word already known costs one index probe and takes no lock.
ADD_TERMS = r"""
CREATE FUNCTION search_add_terms(doc text) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO search_terms (term)
    SELECT DISTINCT w FROM regexp_split_to_table(lower(left(doc, 20000)), '[^[:alpha:]]+') AS w
    WHERE length(w) BETWEEN 3 AND 40
    ORDER BY 1
    ON CONFLICT DO NOTHING
$$
"""

# Titles twice: stemmed for search, as typed for prefixes (suggest).
TITLE = r"""
CREATE FUNCTION search_weighted(doc text, weight "char") RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english', coalesce(doc, '')), weight)
        || setweight(to_tsvector('simple', coalesce(doc, '')), weight)
$$
"""

WORKFLOW = r"""
CREATE FUNCTION search_workflow_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    steps text := (
        SELECT string_agg(concat_ws(' ', s->>'key', s->>'name', s->>'kind'), ' ')
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(NEW.steps) = 'array'
                                       THEN NEW.steps ELSE '[]' END) AS s
    );
    tags text := array_to_string(NEW.tags, ' ');
BEGIN
    NEW.search_tsv := search_weighted(concat_ws(' ', NEW.key, NEW.name), 'A')
        || search_weighted(tags, 'B')
        || setweight(to_tsvector('english', concat_ws(' ', NEW.description, steps)), 'C');
    PERFORM search_add_terms(concat_ws(' ', NEW.key, NEW.name, tags, NEW.description, steps));
    RETURN NEW;
END
$$
"""

EXECUTION = r"""
CREATE FUNCTION search_execution_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    title text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.search_tsv IS NOT NULL
            AND NEW.status IS NOT DISTINCT FROM OLD.status
            AND NEW.error IS NOT DISTINCT FROM OLD.error
            AND NEW.workflow_id IS NOT DISTINCT FROM OLD.workflow_id THEN
        RETURN NEW;
    END IF;
    SELECT concat_ws(' ', w.key, w.name) INTO title FROM workflows w WHERE w.id = NEW.workflow_id;
    NEW.search_tsv := search_weighted(title, 'A')
        || search_weighted(NEW.status::text, 'B')
        || setweight(to_tsvector('english', coalesce(NEW.error, '')), 'C');
    IF NEW.error IS NOT NULL THEN
        PERFORM search_add_terms(NEW.error);
    END IF;
    RETURN NEW;
END
$$
"""

AGENT = r"""
CREATE FUNCTION search_agent_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tags text := concat_ws(' ', NEW.role::text, array_to_string(NEW.capabilities, ' '));
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.search_tsv IS NOT NULL
            AND NEW.name IS NOT DISTINCT FROM OLD.name
            AND NEW.role IS NOT DISTINCT FROM OLD.role
            AND NEW.capabilities IS NOT DISTINCT FROM OLD.capabilities
            AND NEW.description IS NOT DISTINCT FROM OLD.description THEN
        RETURN NEW;
    END IF;
    NEW.search_tsv := search_weighted(NEW.name, 'A')
        || search_weighted(tags, 'B')
        || setweight(to_tsvector('english', coalesce(NEW.description, '')), 'C');
    PERFORM search_add_terms(concat_ws(' ', NEW.name, tags, NEW.description));
    RETURN NEW;
END
$$
"""

NOTIFICATION = r"""
CREATE FUNCTION search_notification_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.search_tsv IS NOT NULL
            AND NEW.subject IS NOT DISTINCT FROM OLD.subject
            AND NEW.body IS NOT DISTINCT FROM OLD.body THEN
        RETURN NEW;
    END IF;
    NEW.search_tsv := search_weighted(NEW.subject, 'A')
        || setweight(to_tsvector('english', coalesce(NEW.body, '')), 'C');
    PERFORM search_add_terms(concat_ws(' ', NEW.subject, NEW.body));
    RETURN NEW;
END
$$
"""

MEMORY = r"""
CREATE FUNCTION search_memory_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.content IS NOT DISTINCT FROM OLD.content
            AND NEW.metadata IS NOT DISTINCT FROM OLD.metadata THEN
        RETURN NEW;
    END IF;
    PERFORM search_add_terms(concat_ws(' ', NEW.content, (
        SELECT string_agg(j #>> '{}', ' ')
        FROM jsonb_path_query(NEW.metadata, 'strict $.** ? (@.type() == "string")') AS j)));
    RETURN NEW;
END
$$
"""

# Memories' metadata string values, beside their own ``tsv`` (migration 0013 puts both in
# one vector, and its downgrade brings these back).
MEMORY_META = (
    "ALTER TABLE memories ADD COLUMN search_meta tsvector GENERATED ALWAYS AS "
    "(setweight(jsonb_to_tsvector('english', metadata, '[\"string\"]'), 'B')) STORED",
    "CREATE INDEX ix_memories_search_meta ON memories USING gin (search_meta) "
    "WITH (fastupdate = off)",
)
TABLES = {
    "workflows": ("search_workflow_trigger", "INSERT OR UPDATE"),
    "workflow_executions": (
        "search_execution_trigger",
        "INSERT OR UPDATE OF status, error, workflow_id, search_tsv",
    ),
    "agents": (
        "search_agent_trigger",
        "INSERT OR UPDATE OF name, role, capabilities, description, search_tsv",
    ),
    "notifications": (
        "search_notification_trigger",
        "INSERT OR UPDATE OF subject, body, search_tsv",
    ),
}
FUNCTIONS = (
    "search_add_terms(text)",
    'search_weighted(text, "char")',
    "search_workflow_trigger()",
    "search_execution_trigger()",
    "search_agent_trigger()",
    "search_notification_trigger()",
    "search_memory_trigger()",
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE TABLE search_terms (term varchar(40) PRIMARY KEY)")
    op.execute("CREATE INDEX ix_search_terms_trgm ON search_terms USING gin (term gin_trgm_ops)")
    for ddl in (ADD_TERMS, TITLE, WORKFLOW, EXECUTION, AGENT, NOTIFICATION, MEMORY):
        op.execute(ddl)
    for function in FUNCTIONS:
        # Triggers run them; nobody else (SQL steps' role included) needs to.
        op.execute(f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")

    for table, (function, events) in TABLES.items():
        op.execute(f"ALTER TABLE {table} ADD COLUMN search_tsv tsvector")
        op.execute(
            f"CREATE TRIGGER search_index BEFORE {events} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
    for table in TABLES:
        # Existing rows: a NULL vector is rebuilt by the trigger.
        op.execute(f"UPDATE {table} SET search_tsv = NULL")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN search_tsv SET NOT NULL")
        # fastupdate off: a pending list is scanned by every search until it is flushed.
        op.execute(
            f"CREATE INDEX ix_{table}_search ON {table} USING gin (search_tsv) "
            "WITH (fastupdate = off)"
        )

    for statement in MEMORY_META:
        op.execute(statement)
    op.execute(
        "CREATE TRIGGER search_terms AFTER INSERT OR UPDATE OF content, metadata ON memories "
        "FOR EACH ROW EXECUTE FUNCTION search_memory_trigger()"
    )
    op.execute("SELECT search_add_terms(content) FROM memories")
    op.execute("ANALYZE search_terms")


def downgrade() -> None:
    op.execute("DROP TRIGGER search_terms ON memories")
    op.execute("ALTER TABLE memories DROP COLUMN search_meta")
    for table in TABLES:
        op.execute(f"DROP TRIGGER search_index ON {table}")
        op.execute(f"ALTER TABLE {table} DROP COLUMN search_tsv")
    for function in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION {function}")
    op.execute("DROP TABLE search_terms")
