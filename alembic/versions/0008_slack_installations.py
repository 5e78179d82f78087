"""surface installations (Slack OAuth, per workspace, bound to a tenant) and OAuth states

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from core.db import rls

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INSTALLS = "surface_installations"
STATES = "surface_oauth_states"


def upgrade() -> None:
    op.create_table(
        INSTALLS,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("surface", sa.String(length=16), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("enterprise_id", sa.String(length=64), nullable=True),
        sa.Column("bot_token_encrypted", sa.Text(), nullable=False),
        sa.Column("bot_user_id", sa.String(length=64), nullable=False),
        sa.Column("bot_id", sa.String(length=64), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("installer_user_id", sa.String(length=64), nullable=True),
        sa.Column("installed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_surface_installations_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surface_installations")),
        sa.UniqueConstraint("surface", "workspace_id", "enterprise_id",
                            name=op.f("uq_surface_installations_surface_workspace_id_enterprise_id"),
                            postgresql_nulls_not_distinct=True),
    )
    op.create_index(op.f("ix_surface_installations_tenant_id"), INSTALLS, ["tenant_id"])
    for sql in rls.grant_table_sql(INSTALLS) + rls.enable_rls_sql(INSTALLS):
        op.execute(sql)
    op.create_table(
        STATES,
        sa.Column("state", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_surface_oauth_states_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_surface_oauth_states")),
    )
    # System scope only: the OAuth redirect learns the tenant from this row.
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {STATES} TO {rls.SYSTEM_ROLE}")


def downgrade() -> None:
    op.drop_table(STATES)
    op.drop_table(INSTALLS)
