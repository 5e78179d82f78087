"""Roles, grants, row-level security on every tenant-owned table, append-only timeline.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from core.db import rls

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen list: later migrations enable RLS on the tables they add.
TENANT_TABLES = [
    "agents", "api_keys", "attachments", "audit_log", "contacts", "drafts", "inboxes",
    "messages", "outbox", "raw_inbound", "surface_anchors", "ticket_counters",
    "ticket_events", "tickets",
]


def upgrade() -> None:
    for sql in rls.create_roles_sql():
        op.execute(sql)
    op.execute(f"GRANT SELECT ON tenants TO {rls.APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON tenants TO {rls.SYSTEM_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {rls.APP_ROLE}, {rls.SYSTEM_ROLE}")
    for table in TENANT_TABLES:
        for sql in rls.grant_table_sql(table, append_only=table == "ticket_events"):
            op.execute(sql)
        for sql in rls.enable_rls_sql(table):
            op.execute(sql)
    for sql in rls.append_only_sql("ticket_events"):
        op.execute(sql)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS ticket_events_append_only ON ticket_events")
    op.execute("DROP FUNCTION IF EXISTS threadline_refuse_change()")
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
