"""Teams: the service URL per Azure AD tenant and each channel's tenant; an inbox's team rule

Revision ID: 0022
Revises: 0021

New channel threads go through the regional service URL the tenant's own activities came from,
not the global default (issue 13). `inboxes.teams_team_id`: only members of that team act on the
inbox's tickets, as Slack's user group rule.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from core.db import rls

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams_service_urls",
        sa.Column("aad_tenant_id", sa.String(length=64), nullable=False),
        sa.Column("service_url", sa.String(length=512), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("aad_tenant_id", name=op.f("pk_teams_service_urls")),
    )
    op.create_table(
        "teams_channel_tenants",
        sa.Column("channel_id", sa.String(length=256), nullable=False),
        sa.Column("aad_tenant_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_teams_channel_tenants")),
    )
    for table in ("teams_service_urls", "teams_channel_tenants"):
        # Written at the endpoint (system scope), read by tenant jobs creating a thread.
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON {table} TO {rls.SYSTEM_ROLE}")
        op.execute(f"GRANT SELECT ON {table} TO {rls.APP_ROLE}")
    op.add_column("inboxes", sa.Column("teams_team_id", sa.String(length=256), nullable=True))


def downgrade() -> None:
    op.drop_column("inboxes", "teams_team_id")
    op.drop_table("teams_channel_tenants")
    op.drop_table("teams_service_urls")
