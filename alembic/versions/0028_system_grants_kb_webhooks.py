"""threadline_system reads but does not write the knowledge base and webhooks

Every write to `kb_documents`, `kb_chunks`, `webhook_subscriptions` and `webhook_deliveries` runs in a
tenant's unit of work (RLS on): `kb ingest` and the admin API's knowledge routes (knowledge/ingest.py,
knowledge/llama.py), the webhook service and delivery job (core/webhooks/service.py, delivery.py),
`threadline webhooks`. No `system_scope` path writes them (the relay, leases, retention, erasure's
blob check, routing, platform keys, the operator CLI), so the cross-tenant role keeps SELECT and
loses INSERT, UPDATE and DELETE, as 0026 did for ticket content.

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

from alembic import op
from core.db import rls

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

READ_ONLY_FOR_SYSTEM = ("kb_documents", "kb_chunks", "webhook_subscriptions", "webhook_deliveries")


def upgrade() -> None:
    for table in READ_ONLY_FOR_SYSTEM:
        op.execute(f"REVOKE INSERT, UPDATE, DELETE ON {table} FROM {rls.SYSTEM_ROLE}")


def downgrade() -> None:
    for table in READ_ONLY_FOR_SYSTEM:
        op.execute(f"GRANT INSERT, UPDATE, DELETE ON {table} TO {rls.SYSTEM_ROLE}")
