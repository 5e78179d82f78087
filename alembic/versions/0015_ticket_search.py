"""ticket search: newest-first keyset index, tag GIN, full-text GIN over subjects and messages

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Lists walk this index newest first, filters applied on the way (core/tickets/queries.py).
    op.create_index("ix_tickets_tenant_created", "tickets", ["tenant_id", "created_at", "id"])
    op.create_index("ix_tickets_tags", "tickets", ["tags"], postgresql_using="gin")
    # Expression indexes: the queries must use the same expressions (queries.FTS_CONFIG).
    op.execute("CREATE INDEX ix_tickets_subject_fts ON tickets "
               "USING gin (to_tsvector('simple'::regconfig, subject::text))")
    op.execute("CREATE INDEX ix_messages_body_fts ON messages "
               "USING gin (to_tsvector('simple'::regconfig, body_text))")


def downgrade() -> None:
    op.execute("DROP INDEX ix_messages_body_fts")
    op.execute("DROP INDEX ix_tickets_subject_fts")
    op.drop_index("ix_tickets_tags", table_name="tickets")
    op.drop_index("ix_tickets_tenant_created", table_name="tickets")
