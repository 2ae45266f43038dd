"""search_suggestions: as-you-type completions kept by triggers, read by index range scans

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 09:00:00.000000

One row per completion and term: a completion (``label``) is a workflow's name, key or
tag, an agent's name or capability, an execution's workflow key or a notification's
subject; its terms are its lower-case words joined by one space, from each of its first six
words on (``tail`` when not from the first), so ``churn mo`` finds "Churn model" and
``mod`` finds it too. ``term`` is compared byte by byte (``COLLATE "C"``), so a prefix is a
range of the primary key, read in order and stopped at the LIMIT: the cost of a lookup does
not grow with the number of rows, even for a one-letter prefix.

``audience`` says who may see it, in the key itself, so a member's lookup never reads
another member's rows: ``EVERYONE`` (the nil uuid) for workflows and agents, the owner for
executions and notifications, ``NOBODY`` (the max uuid, admins only) for an execution whose
member was deleted. ``refs`` counts the rows that carry the completion and ``id`` is the
newest of them; both change with the rows, in the writing transaction (AFTER triggers).
The PL/pgSQL functions keep one generic plan per statement (``plan_cache_mode``): a custom
plan, made again for every row written, would parse the inlined SQL functions each time
(about half a trigger's cost).
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# In the SQL below: EVERYONE is '00000000-0000-0000-0000-000000000000', NOBODY is
# 'ffffffff-ffff-ffff-ffff-ffffffffffff', and labels and terms are cut at 200 characters.

TABLE = """
CREATE TABLE search_suggestions (
    audience uuid NOT NULL,
    type text COLLATE "C" NOT NULL,
    tail boolean NOT NULL,
    term text COLLATE "C" NOT NULL,
    field text COLLATE "C" NOT NULL,
    label text COLLATE "C" NOT NULL,
    id uuid NOT NULL,
    created_at timestamptz NOT NULL,
    refs integer NOT NULL,
    CONSTRAINT pk_search_suggestions PRIMARY KEY (audience, type, tail, term, field, label)
)
"""
# Admins read every audience: by type, then the same order.
ADMIN_INDEX = (
    "CREATE INDEX ix_search_suggestions_type ON search_suggestions (type, tail, term, field, label)"
)

TERMS = """
CREATE FUNCTION search_suggestion_terms(label text) RETURNS TABLE (tail boolean, term text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT DISTINCT i > 1, left(array_to_string(s.w[i:], ' '), 200)
    FROM (SELECT array_remove(regexp_split_to_array(lower(label), '[^[:alnum:]]+'), '') AS w)
        AS s,
        generate_series(1, least(cardinality(s.w), 6)) AS i
$$
"""

# What each kind of row offers: (audience, field, label).
LABELS = {
    "search_workflow_labels": """
CREATE FUNCTION search_workflow_labels(name text, key text, tags varchar[])
RETURNS TABLE (audience uuid, field text, label text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT DISTINCT '00000000-0000-0000-0000-000000000000'::uuid, f, left(l, 200)
    FROM (SELECT 'name', name UNION ALL SELECT 'key', key
          UNION ALL SELECT 'tag', unnest(tags)::text) AS x(f, l)
    WHERE l ~ '[[:alnum:]]'
$$""",
    "search_agent_labels": """
CREATE FUNCTION search_agent_labels(name text, capabilities varchar[])
RETURNS TABLE (audience uuid, field text, label text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT DISTINCT '00000000-0000-0000-0000-000000000000'::uuid, f, left(l, 200)
    FROM (SELECT 'name', name UNION ALL SELECT 'capability', unnest(capabilities)::text)
        AS x(f, l)
    WHERE l ~ '[[:alnum:]]'
$$""",
    "search_execution_labels": """
CREATE FUNCTION search_execution_labels(created_by uuid, workflow_id uuid)
RETURNS TABLE (audience uuid, field text, label text)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(search_execution_labels.created_by,
            'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid),
        'key', left(w.key, 200)
    FROM workflows w
    WHERE w.id = search_execution_labels.workflow_id AND w.key ~ '[[:alnum:]]'
$$""",
    "search_notification_labels": """
CREATE FUNCTION search_notification_labels(user_id uuid, subject text)
RETURNS TABLE (audience uuid, field text, label text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT user_id, 'subject', left(subject, 200)
    WHERE subject ~ '[[:alnum:]]'
$$""",
}

# Rows are written in key order, so two transactions adding the same completions lock them
# in the same order (no deadlock). PL/pgSQL, so its plan is made once per connection.
ADD = """
CREATE FUNCTION search_suggest_add(
    _type text, _id uuid, _at timestamptz, _audiences uuid[], _fields text[], _labels text[]
) RETURNS void
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    INSERT INTO search_suggestions AS s
        (audience, type, tail, term, field, label, id, created_at, refs)
    SELECT l.audience, _type, t.tail, t.term, l.field, l.label, _id, _at, 1
    FROM unnest(_audiences, _fields, _labels) AS l(audience, field, label)
    CROSS JOIN LATERAL search_suggestion_terms(l.label) AS t
    ORDER BY 1, 3, 4, 5, 6
    ON CONFLICT (audience, type, tail, term, field, label) DO UPDATE
    SET refs = s.refs + 1,
        id = CASE WHEN (EXCLUDED.created_at, EXCLUDED.id) > (s.created_at, s.id)
                  THEN EXCLUDED.id ELSE s.id END,
        created_at = greatest(s.created_at, EXCLUDED.created_at);
END
$$
"""

# The newest row still carrying a completion, once the one it named is gone.
CARRIER = """
CREATE FUNCTION search_suggest_carrier(
    _type text, _audience uuid, _field text, _label text, OUT id uuid, OUT created_at timestamptz
)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF _type = 'WORKFLOW' THEN
        SELECT w.id, w.created_at INTO id, created_at FROM workflows w
        WHERE CASE _field WHEN 'name' THEN left(w.name, 200) = _label
                          WHEN 'key' THEN left(w.key, 200) = _label
                          ELSE _label = ANY(w.tags::text[]) END
        ORDER BY w.created_at DESC, w.id DESC LIMIT 1;
    ELSIF _type = 'AGENT' THEN
        SELECT a.id, a.created_at INTO id, created_at FROM agents a
        WHERE CASE _field WHEN 'name' THEN left(a.name, 200) = _label
                          ELSE _label = ANY(a.capabilities::text[]) END
        ORDER BY a.created_at DESC, a.id DESC LIMIT 1;
    ELSIF _type = 'EXECUTION' AND _audience = 'ffffffff-ffff-ffff-ffff-ffffffffffff' THEN
        SELECT e.id, e.created_at INTO id, created_at
        FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id
        WHERE e.created_by IS NULL AND left(w.key, 200) = _label
        ORDER BY e.created_at DESC, e.id DESC LIMIT 1;
    ELSIF _type = 'EXECUTION' THEN
        SELECT e.id, e.created_at INTO id, created_at
        FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id
        WHERE e.created_by = _audience AND left(w.key, 200) = _label
        ORDER BY e.created_at DESC, e.id DESC LIMIT 1;
    ELSIF _type = 'NOTIFICATION' THEN
        SELECT n.id, n.created_at INTO id, created_at FROM notifications n
        WHERE n.user_id = _audience AND left(n.subject, 200) = _label
        ORDER BY n.created_at DESC, n.id DESC LIMIT 1;
    END IF;
END
$$
"""

# One row fewer carries a completion: count it down, drop it at zero, and when the row that
# went was the one it named, name the newest one left. (Within a statement that removes
# several carriers, such as a cascade, the others may already be gone: then it keeps its
# name until the last one counts it down to zero.)
REMOVE = """
CREATE FUNCTION search_suggest_remove(
    _type text, _id uuid, _audience uuid, _field text, _label text
) RETURNS void
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    left_over integer;
    was_named boolean;
    newest record;
BEGIN
    WITH counted AS (
        UPDATE search_suggestions s SET refs = s.refs - 1
        FROM search_suggestion_terms(_label) AS t
        WHERE s.audience = _audience AND s.type = _type AND s.tail = t.tail
            AND s.term = t.term AND s.field = _field AND s.label = _label
        RETURNING s.refs, s.id = _id AS named
    )
    SELECT min(counted.refs), bool_or(counted.named) INTO left_over, was_named FROM counted;
    IF left_over IS NULL THEN
        RETURN;
    ELSIF left_over <= 0 THEN
        DELETE FROM search_suggestions s USING search_suggestion_terms(_label) AS t
        WHERE s.audience = _audience AND s.type = _type AND s.tail = t.tail
            AND s.term = t.term AND s.field = _field AND s.label = _label;
    ELSIF was_named THEN
        newest := search_suggest_carrier(_type, _audience, _field, _label);
        IF newest.id IS NOT NULL THEN
            UPDATE search_suggestions s SET id = newest.id, created_at = newest.created_at
            FROM search_suggestion_terms(_label) AS t
            WHERE s.audience = _audience AND s.type = _type AND s.tail = t.tail
                AND s.term = t.term AND s.field = _field AND s.label = _label;
        END IF;
    END IF;
END
$$
"""


def _trigger(name: str, kind: str, labels: str, old: str, new: str) -> str:
    """An AFTER trigger function: what the old row offered and the new one does not is
    counted down, what the new row offers and the old one did not is added."""
    return f"""
CREATE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    c record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM search_suggest_add('{kind}', NEW.id, NEW.created_at,
            array_agg(l.audience), array_agg(l.field), array_agg(l.label))
        FROM {labels}({new}) AS l
        HAVING count(*) > 0;
        RETURN NULL;
    END IF;
    FOR c IN
        SELECT * FROM {labels}({old})
        EXCEPT SELECT * FROM {labels}({new})
        ORDER BY 1, 2, 3
    LOOP
        PERFORM search_suggest_remove('{kind}', OLD.id, c.audience, c.field, c.label);
    END LOOP;
    IF TG_OP = 'UPDATE' THEN
        PERFORM search_suggest_add('{kind}', NEW.id, NEW.created_at,
            array_agg(l.audience), array_agg(l.field), array_agg(l.label))
        FROM (SELECT * FROM {labels}({new}) EXCEPT SELECT * FROM {labels}({old})) AS l
        HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$$"""  # noqa: S608 (fixed fragments)


def _cols(row: str, cols: str) -> str:
    return ", ".join(f"{row}.{c.strip()}" for c in cols.split(","))


SOURCES = {
    # table: (trigger function, type, labels function, the columns it reads)
    "workflows": (
        "search_suggest_workflow_trigger",
        "WORKFLOW",
        "search_workflow_labels",
        "name, key, tags",
    ),
    "agents": (
        "search_suggest_agent_trigger",
        "AGENT",
        "search_agent_labels",
        "name, capabilities",
    ),
    "workflow_executions": (
        "search_suggest_execution_trigger",
        "EXECUTION",
        "search_execution_labels",
        "created_by, workflow_id",
    ),
    "notifications": (
        "search_suggest_notification_trigger",
        "NOTIFICATION",
        "search_notification_labels",
        "user_id, subject",
    ),
}

# An execution offers its workflow's key, which its own row does not hold: when a workflow
# goes (its executions go with it, after it, and can no longer read the key) or changes its
# key, the executions' completions of that key are counted again from what stays.
RECOUNT = """
CREATE FUNCTION search_suggest_recount_executions(_key text, _gone uuid) RETURNS void
LANGUAGE sql VOLATILE AS $$
    DELETE FROM search_suggestions s USING search_suggestion_terms(left(_key, 200)) t
    WHERE s.type = 'EXECUTION' AND s.tail = t.tail AND s.term = t.term AND s.field = 'key'
        AND s.label = left(_key, 200);
    INSERT INTO search_suggestions (audience, type, tail, term, field, label, id, created_at,
        refs)
    SELECT l.audience, 'EXECUTION', t.tail, t.term, 'key', l.label, l.id, l.created_at, l.refs
    FROM (
        SELECT coalesce(e.created_by, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid) AS audience,
            left(w.key, 200) AS label,
            (array_agg(e.id ORDER BY e.created_at DESC, e.id DESC))[1] AS id,
            max(e.created_at) AS created_at, count(*) AS refs
        FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id
        WHERE w.key = _key AND w.id IS DISTINCT FROM _gone
        GROUP BY 1, 2
    ) AS l CROSS JOIN LATERAL search_suggestion_terms(l.label) AS t
$$
"""
WORKFLOW_KEYS = """
CREATE FUNCTION search_suggest_workflow_key_trigger() RETURNS trigger
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM search_suggest_recount_executions(OLD.key, OLD.id);
        RETURN OLD;
    END IF;
    PERFORM search_suggest_recount_executions(OLD.key, NULL);
    PERFORM search_suggest_recount_executions(NEW.key, NULL);
    RETURN NULL;
END
$$
"""

# Existing rows, counted in one pass per table.
BACKFILL = """
INSERT INTO search_suggestions (audience, type, tail, term, field, label, id, created_at, refs)
SELECT l.audience, l.type, t.tail, t.term, l.field, l.label, l.id, l.created_at, l.refs
FROM (
    SELECT c.audience, c.type, c.field, c.label,
        (array_agg(c.id ORDER BY c.created_at DESC, c.id DESC))[1] AS id,
        max(c.created_at) AS created_at, count(*) AS refs
    FROM (
        SELECT f.*, 'WORKFLOW' AS type, w.id, w.created_at FROM workflows w
        CROSS JOIN LATERAL search_workflow_labels(w.name, w.key, w.tags) AS f
        UNION ALL
        SELECT f.*, 'AGENT', a.id, a.created_at FROM agents a
        CROSS JOIN LATERAL search_agent_labels(a.name, a.capabilities) AS f
        UNION ALL
        SELECT coalesce(e.created_by, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid), 'key',
            left(w.key, 200), 'EXECUTION', e.id, e.created_at
        FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id
        WHERE w.key ~ '[[:alnum:]]'
        UNION ALL
        SELECT f.*, 'NOTIFICATION', n.id, n.created_at FROM notifications n
        CROSS JOIN LATERAL search_notification_labels(n.user_id, n.subject) AS f
    ) AS c
    GROUP BY 1, 2, 3, 4
) AS l CROSS JOIN LATERAL search_suggestion_terms(l.label) AS t
"""

FUNCTIONS = (
    "search_suggestion_terms(text)",
    "search_workflow_labels(text, text, varchar[])",
    "search_agent_labels(text, varchar[])",
    "search_execution_labels(uuid, uuid)",
    "search_notification_labels(uuid, text)",
    "search_suggest_add(text, uuid, timestamptz, uuid[], text[], text[])",
    "search_suggest_carrier(text, uuid, text, text)",
    "search_suggest_remove(text, uuid, uuid, text, text)",
    "search_suggest_recount_executions(text, uuid)",
    "search_suggest_workflow_key_trigger()",
    *(f"{function}()" for function, *_ in SOURCES.values()),
)


def upgrade() -> None:
    op.execute(TABLE)
    for ddl in (TERMS, *LABELS.values(), ADD, CARRIER, REMOVE, RECOUNT, WORKFLOW_KEYS):
        op.execute(ddl)
    for table, (function, kind, labels, cols) in SOURCES.items():
        op.execute(_trigger(function, kind, labels, _cols("OLD", cols), _cols("NEW", cols)))
        changed = " OR ".join(
            f"OLD.{c.strip()} IS DISTINCT FROM NEW.{c.strip()}" for c in cols.split(",")
        )
        op.execute(
            f"CREATE TRIGGER search_suggest AFTER INSERT OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
        op.execute(
            f"CREATE TRIGGER search_suggest_update AFTER UPDATE OF {cols} ON {table} "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION {function}()"
        )
    op.execute(
        "CREATE TRIGGER search_suggest_keys BEFORE DELETE ON workflows "
        "FOR EACH ROW EXECUTE FUNCTION search_suggest_workflow_key_trigger()"
    )
    op.execute(
        "CREATE TRIGGER search_suggest_keys_update AFTER UPDATE OF key ON workflows "
        "FOR EACH ROW WHEN (OLD.key IS DISTINCT FROM NEW.key) "
        "EXECUTE FUNCTION search_suggest_workflow_key_trigger()"
    )
    for function in FUNCTIONS:
        # Triggers run them; nobody else (SQL steps' role included) needs to.
        op.execute(f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")
    op.execute(BACKFILL)
    op.execute(ADMIN_INDEX)
    op.execute("ANALYZE search_suggestions")


def downgrade() -> None:
    op.execute("DROP TRIGGER search_suggest_keys_update ON workflows")
    op.execute("DROP TRIGGER search_suggest_keys ON workflows")
    for table in SOURCES:
        op.execute(f"DROP TRIGGER search_suggest_update ON {table}")
        op.execute(f"DROP TRIGGER search_suggest ON {table}")
    for function in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION {function}")
    op.execute("DROP TABLE search_suggestions")
