"""step_executions.trace_context: the trace a dispatch continues

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # {"traceparent": …, "tracestate": …}: a lost dispatch sent again continues its trace.
    op.add_column(
        'step_executions',
        sa.Column('trace_context', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column('step_executions', 'trace_context')
