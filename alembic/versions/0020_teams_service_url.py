"""surface anchors: the Teams service URL a ticket's thread was created through

Revision ID: 0020
Revises: 0019

Teams answers a bot through the regional service URL it was reached at; updates of the card and
replies in the thread must go back to that exact URL (issue 13), so it is stored with the anchor.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("surface_anchors", sa.Column("service_url", sa.String(length=512), nullable=True))


def downgrade() -> None:
    op.drop_column("surface_anchors", "service_url")
