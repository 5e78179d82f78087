"""web chat widget: attachments shown in the visitor's transcript

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # [{"filename", "content_type", "size"}]: what the visitor sees; the ticket's `attachments` rows stay the truth.
    op.add_column("widget_messages", sa.Column("attachments", postgresql.JSONB(), nullable=False,
                                               server_default=sa.text("'[]'::jsonb")))


def downgrade() -> None:
    op.drop_column("widget_messages", "attachments")
