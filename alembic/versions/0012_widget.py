"""web chat widget: conversations and their transcript

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from core.db import rls

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

CONVERSATIONS = "widget_conversations"
MESSAGES = "widget_messages"


def upgrade() -> None:
    op.create_table(
        CONVERSATIONS,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("inbox_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=True),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("origin", sa.String(length=300), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["inbox_id"], ["inboxes.id"], name=op.f("fk_widget_conversations_inbox_id_inboxes"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_widget_conversations_ticket_id_tickets"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_widget_conversations_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_widget_conversations")),
    )
    for column in ("inbox_id", "ticket_id", "tenant_id"):
        op.create_index(op.f(f"ix_{CONVERSATIONS}_{column}"), CONVERSATIONS, [column], unique=False)
    op.create_table(
        MESSAGES,
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("author", sa.Enum("visitor", "agent", name="widget_author", native_enum=False,
                                    create_constraint=False, length=32), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("client_message_id", sa.String(length=64), nullable=True),
        sa.Column("raw_inbound_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], [f"{CONVERSATIONS}.id"],
                                name=op.f("fk_widget_messages_conversation_id_widget_conversations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["raw_inbound_id"], ["raw_inbound.id"],
                                name=op.f("fk_widget_messages_raw_inbound_id_raw_inbound")),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_widget_messages_message_id_messages"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_widget_messages_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_widget_messages")),
        sa.UniqueConstraint("conversation_id", "seq", name=op.f("uq_widget_messages_conversation_id_seq")),
        sa.UniqueConstraint("conversation_id", "client_message_id",
                            name=op.f("uq_widget_messages_conversation_id_client_message_id")),
        sa.UniqueConstraint("message_id", name=op.f("uq_widget_messages_message_id")),
    )
    op.create_index(op.f("ix_widget_messages_tenant_id"), MESSAGES, ["tenant_id"], unique=False)
    op.create_index("ix_widget_messages_raw_inbound_id", MESSAGES, ["raw_inbound_id"], unique=False)
    for table in (CONVERSATIONS, MESSAGES):
        for sql in (*rls.grant_table_sql(table), *rls.enable_rls_sql(table)):
            op.execute(sql)
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE {MESSAGES}_id_seq TO {rls.APP_ROLE}, {rls.SYSTEM_ROLE}")


def downgrade() -> None:
    op.drop_table(MESSAGES)
    op.drop_table(CONVERSATIONS)
