"""imap_accounts: mailboxes polled into inboxes, with their UIDVALIDITY/UID checkpoint

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from core.db import rls

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLE = "imap_accounts"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("inbox_id", sa.Uuid(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column(
            "tls", sa.Enum("ssl", "starttls", "none", name="imap_tls", native_enum=False, length=32), nullable=False
        ),
        sa.Column("username", sa.String(length=320), nullable=False),
        sa.Column("password_encrypted", sa.Text(), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column(
            "after_action",
            sa.Enum("flag", "move", "delete", name="imap_after_action", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("move_to", sa.String(length=255), nullable=True),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inboxes.id"], name=op.f("fk_imap_accounts_inbox_id_inboxes"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_imap_accounts_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imap_accounts")),
        sa.UniqueConstraint("inbox_id", name=op.f("uq_imap_accounts_inbox_id")),
    )
    op.create_index(op.f("ix_imap_accounts_tenant_id"), TABLE, ["tenant_id"], unique=False)
    for sql in rls.grant_table_sql(TABLE):
        op.execute(sql)
    for sql in rls.enable_rls_sql(TABLE):
        op.execute(sql)


def downgrade() -> None:
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {TABLE}")
    op.drop_index(op.f("ix_imap_accounts_tenant_id"), table_name=TABLE)
    op.drop_table(TABLE)
