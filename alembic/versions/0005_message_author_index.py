"""index messages by author and time (per-sender rate caps)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_author_created", "messages", ["author_contact_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_author_created", table_name="messages")
