"""Admin API: key scopes and expiry, platform keys, idempotency records, disabled tenants,
acknowledgement text, audit request id and client address

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from core.db import rls

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("inboxes", sa.Column("acknowledgement_text", sa.Text(), nullable=True))
    op.add_column("audit_log", sa.Column("client_ip", sa.String(length=64), nullable=True))
    op.add_column("audit_log", sa.Column("request_id", sa.String(length=64), nullable=True))

    # Existing keys were all tenant admin keys; platform keys have no tenant.
    op.add_column("api_keys", sa.Column("scope", sa.Enum("admin", "read", "platform", name="api_key_scope",
                                                         native_enum=False, length=32),
                                        nullable=False, server_default="admin"))
    op.alter_column("api_keys", "scope", server_default=None)
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.alter_column("api_keys", "tenant_id", existing_type=sa.Uuid(), nullable=True)
    op.create_check_constraint("platform_keys_have_no_tenant", "api_keys", "(scope = 'platform') = (tenant_id IS NULL)")

    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("response_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"], name=op.f("fk_idempotency_keys_api_key_id_api_keys"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_idempotency_keys_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("api_key_id", "key", name=op.f("uq_idempotency_keys_api_key_id_key")),
    )
    op.create_index(op.f("ix_idempotency_keys_tenant_id"), "idempotency_keys", ["tenant_id"], unique=False)
    op.create_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False)
    for sql in rls.grant_table_sql("idempotency_keys") + rls.enable_rls_sql("idempotency_keys"):
        op.execute(sql)


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_index(op.f("ix_idempotency_keys_tenant_id"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.execute("DELETE FROM api_keys WHERE tenant_id IS NULL")
    op.drop_constraint("ck_api_keys_platform_keys_have_no_tenant", "api_keys", type_="check")
    op.alter_column("api_keys", "tenant_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_column("api_keys", "expires_at")
    op.drop_column("api_keys", "scope")
    op.drop_column("audit_log", "request_id")
    op.drop_column("audit_log", "client_ip")
    op.drop_column("inboxes", "acknowledgement_text")
    op.drop_column("tenants", "disabled_at")
