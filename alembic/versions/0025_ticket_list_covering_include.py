"""ticket lists: the unfiltered keyset index carries the common filter columns

Revision ID: 0025
Revises: 0024

A list filtered by several statuses (open or pending), by priority, by assignee, or by an inbox or a
tag alone has no index in keyset order of its own (0023 covers one status, and an inbox with a
status). It walks `ix_tickets_tenant_created` newest first; with these columns INCLUDEd, the walk
tests the filters on the index tuples (an index-only scan, core/tickets/queries.py selects the ids
first) instead of reading a heap page per ticket it skips.
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX ix_tickets_tenant_created")
    op.execute("CREATE INDEX ix_tickets_tenant_created ON tickets (tenant_id, created_at, id) "
               "INCLUDE (status, priority, inbox_id, assignee_id, tags)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_tickets_tenant_created")
    op.execute("CREATE INDEX ix_tickets_tenant_created ON tickets (tenant_id, created_at, id)")
