"""budget reservations

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# One round trip for every LLM call of a user with a budget. Each query of a VOLATILE
# function takes a fresh snapshot, so the sums are read after the row lock is granted and
# include every reservation committed before it: concurrent calls of a user queue on the
# lock and each sees the others' holds. No row: the user has no budget. A row without a
# reservation: refused (or p_amount was NULL: the model has no price).
RESERVE = """
CREATE FUNCTION reserve_llm_budget(
    p_user uuid, p_amount numeric, p_expires timestamptz, p_since timestamptz
) RETURNS TABLE (reservation uuid, monthly_usd numeric, spent_usd numeric, reserved_usd numeric)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_limit numeric;
    v_spent numeric;
    v_reserved numeric;
    v_id uuid;
BEGIN
    SELECT b.monthly_usd INTO v_limit FROM budgets b WHERE b.user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT coalesce(sum(u.cost_usd), 0) INTO v_spent
        FROM llm_usage u WHERE u.user_id = p_user AND u.created_at >= p_since;
    SELECT coalesce(sum(r.amount_usd), 0) INTO v_reserved
        FROM budget_reservations r WHERE r.user_id = p_user AND r.expires_at > now();
    IF p_amount IS NOT NULL AND v_spent + v_reserved + p_amount <= v_limit THEN
        v_id := gen_random_uuid();
        INSERT INTO budget_reservations (id, user_id, amount_usd, expires_at)
            VALUES (v_id, p_user, p_amount, p_expires);
    END IF;
    RETURN QUERY SELECT v_id, v_limit, v_spent, v_reserved;
END
$$
"""


def upgrade() -> None:
    op.create_table('budget_reservations',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('amount_usd', sa.Numeric(precision=12, scale=6), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_budget_reservations_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_reservations'))
    )
    op.create_index(op.f('ix_budget_reservations_user_id'), 'budget_reservations', ['user_id'], unique=False)
    op.execute(RESERVE)


def downgrade() -> None:
    op.execute('DROP FUNCTION reserve_llm_budget(uuid, numeric, timestamptz, timestamptz)')
    op.drop_index(op.f('ix_budget_reservations_user_id'), table_name='budget_reservations')
    op.drop_table('budget_reservations')
