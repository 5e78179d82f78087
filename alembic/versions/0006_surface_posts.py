"""surface posts, seen events, card update time

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db import rls

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "surface_posts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("surface", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.Enum("message", "agent", "notice", name="post_kind", native_enum=False, length=32),
                  nullable=False),
        sa.Column("channel", sa.String(length=256), nullable=False),
        sa.Column("ts", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_surface_posts_message_id_messages"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_surface_posts_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_surface_posts_ticket_id_tickets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surface_posts")),
        sa.UniqueConstraint("message_id", "surface", "kind", name=op.f("uq_surface_posts_message_id_surface_kind")),
        sa.UniqueConstraint("surface", "channel", "ts", name=op.f("uq_surface_posts_surface_channel_ts")),
    )
    op.create_index("ix_surface_posts_ticket", "surface_posts", ["ticket_id"])
    op.create_index(op.f("ix_surface_posts_tenant_id"), "surface_posts", ["tenant_id"])
    for sql in rls.grant_table_sql("surface_posts") + rls.enable_rls_sql("surface_posts"):
        op.execute(sql)
    op.create_table(
        "seen_events",
        sa.Column("surface", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("surface", "event_id", name=op.f("pk_seen_events")),
    )
    op.execute(f"GRANT SELECT, INSERT, DELETE ON seen_events TO {rls.SYSTEM_ROLE}")
    op.add_column("surface_anchors", sa.Column("card_updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("surface_anchors", "card_updated_at")
    op.drop_table("seen_events")
    op.drop_table("surface_posts")
