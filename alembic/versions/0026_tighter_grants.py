"""tighter grants: no temporary objects for PUBLIC; threadline_system writes only what its jobs write

`threadline_system` is the cross-tenant role (BYPASSRLS) of a handful of call sites: the outbox
relay and leases, retention, SMTP/Slack/Teams routing, bootstrap and the operator CLI, platform API
keys. None of them writes a ticket's content: tickets, their timeline, messages, attachments,
drafts, contacts, the Slack/Teams thread records, ticket numbers and web chats are written in a
tenant's unit of work (RLS on). So the system role keeps SELECT on them and loses INSERT, UPDATE and
DELETE, except the one column retention clears when it prunes raw mail (`raw_inbound_id`).

TEMP: PostgreSQL grants TEMPORARY on every database to PUBLIC; a temporary table is an object the
runtime login would own. Revoked from PUBLIC (the owner keeps it; it owns the database).

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

from alembic import op
from core.db import rls

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

# Tenant content the system role reads (routing, metrics, retention's blob check) but never writes.
READ_ONLY_FOR_SYSTEM = (
    "tickets", "ticket_events", "messages", "attachments", "drafts", "contacts", "surface_anchors",
    "surface_posts", "ticket_counters", "widget_conversations", "widget_messages",
)
# Retention nulls references to pruned raw mail (core/retention/service.py, prune_raw).
RAW_REFERENCES = ("messages", "widget_messages")


def upgrade() -> None:
    op.execute("DO $$ BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()); END $$")
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # 0018 did; kept here for databases restored since
    for table in READ_ONLY_FOR_SYSTEM:
        op.execute(f"REVOKE INSERT, UPDATE, DELETE ON {table} FROM {rls.SYSTEM_ROLE}")
    for table in RAW_REFERENCES:
        op.execute(f"GRANT UPDATE (raw_inbound_id) ON {table} TO {rls.SYSTEM_ROLE}")


def downgrade() -> None:
    for table in RAW_REFERENCES:
        op.execute(f"REVOKE UPDATE (raw_inbound_id) ON {table} FROM {rls.SYSTEM_ROLE}")
    for table in READ_ONLY_FOR_SYSTEM:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {rls.SYSTEM_ROLE}")
    op.execute("DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database()); END $$")
