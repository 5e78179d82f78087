"""agents by email: notification preferences, per-agent per-ticket reply tokens, notification Message-IDs

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from core.db import rls

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("notify_prefs", postgresql.JSONB(astext_type=sa.Text()),
                                      server_default="{}", nullable=False))
    op.create_table(
        "agent_ticket_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_agent_ticket_tokens_agent_id_agents"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_agent_ticket_tokens_ticket_id_tickets"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_agent_ticket_tokens_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_ticket_tokens")),
        sa.UniqueConstraint("agent_id", "ticket_id", name=op.f("uq_agent_ticket_tokens_agent_id_ticket_id")),
        sa.UniqueConstraint("token", name=op.f("uq_agent_ticket_tokens_token")),
    )
    op.create_index(op.f("ix_agent_ticket_tokens_ticket_id"), "agent_ticket_tokens", ["ticket_id"])
    op.create_index(op.f("ix_agent_ticket_tokens_tenant_id"), "agent_ticket_tokens", ["tenant_id"])
    op.create_table(
        "agent_notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_id", sa.Uuid(), nullable=False),
        sa.Column("email_message_id", sa.String(length=998), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["agent_ticket_tokens.id"],
                                name=op.f("fk_agent_notifications_token_id_agent_ticket_tokens"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_agent_notifications_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_notifications")),
        sa.UniqueConstraint("email_message_id", name=op.f("uq_agent_notifications_email_message_id")),
    )
    op.create_index(op.f("ix_agent_notifications_token_id"), "agent_notifications", ["token_id"])
    op.create_index(op.f("ix_agent_notifications_tenant_id"), "agent_notifications", ["tenant_id"])
    for table in ("agent_ticket_tokens", "agent_notifications"):
        for sql in rls.grant_table_sql(table) + rls.enable_rls_sql(table):
            op.execute(sql)


def downgrade() -> None:
    op.drop_table("agent_notifications")
    op.drop_table("agent_ticket_tokens")
    op.drop_column("agents", "notify_prefs")
