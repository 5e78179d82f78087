"""raw_inbound: outcome, resulting ticket and message

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("raw_inbound", sa.Column("outcome", sa.Text(), nullable=True))
    op.add_column("raw_inbound", sa.Column("ticket_id", sa.Uuid(), nullable=True))
    op.add_column("raw_inbound", sa.Column("message_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column("raw_inbound", "message_id")
    op.drop_column("raw_inbound", "ticket_id")
    op.drop_column("raw_inbound", "outcome")
