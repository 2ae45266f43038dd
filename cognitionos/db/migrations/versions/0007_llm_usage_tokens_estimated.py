"""llm_usage: estimated token counts and how JSON output was asked for

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # true: the provider sent no usage block, so the counts were estimated from the text.
    op.add_column(
        'llm_usage',
        sa.Column('tokens_estimated', sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    # json_schema, json_object, tool or prompt; NULL: the call did not ask for JSON.
    op.add_column('llm_usage', sa.Column('output_mode', sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column('llm_usage', 'output_mode')
    op.drop_column('llm_usage', 'tokens_estimated')
