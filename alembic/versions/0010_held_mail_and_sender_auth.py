"""raw_inbound: held mail (ignored or quarantined, releasable) and a summary; messages: sender authenticity

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("raw_inbound", sa.Column("held", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("raw_inbound", sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=False,
                                           server_default="{}"))
    op.add_column("raw_inbound", sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("raw_inbound", sa.Column("released_by", sa.String(length=200), nullable=True))
    op.add_column("raw_inbound", sa.Column("surface_refs", postgresql.JSONB(astext_type=sa.Text()), nullable=False,
                                           server_default="{}"))
    op.alter_column("raw_inbound", "surface_refs", server_default=None)
    op.alter_column("raw_inbound", "held", server_default=None)
    op.alter_column("raw_inbound", "summary", server_default=None)
    # Everything ignored or quarantined so far, except plain duplicates, is held: visible and releasable.
    op.execute(
        "UPDATE raw_inbound SET held = true WHERE status IN ('ignored', 'quarantined') "
        "AND coalesce(outcome, '') NOT LIKE 'duplicate%'"
    )
    op.create_index("ix_raw_inbound_held", "raw_inbound", ["tenant_id", "received_at"], unique=False,
                    postgresql_where=sa.text("held"))
    op.add_column("messages", sa.Column("sender_auth", postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "sender_auth")
    op.drop_index("ix_raw_inbound_held", table_name="raw_inbound")
    for column in ("surface_refs", "released_by", "released_at", "summary", "held"):
        op.drop_column("raw_inbound", column)
