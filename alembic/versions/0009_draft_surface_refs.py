"""drafts: where each surface shows the draft card

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("drafts", sa.Column("surface_refs", postgresql.JSONB(astext_type=sa.Text()), nullable=False,
                                      server_default="{}"))
    op.alter_column("drafts", "surface_refs", server_default=None)


def downgrade() -> None:
    op.drop_column("drafts", "surface_refs")
