"""job leases: outbox rows are owned by a renewable lease; a ledger of side effects by key

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from core.db import rls

revision = "0014"
down_revision = "0013"  # 0013 (widget attachments) was taken by another change
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("lease_token", sa.Uuid(), nullable=True))
    # Rows in flight before the upgrade get a lease that expires now: the scheduler re-sends them.
    op.execute("UPDATE outbox SET lease_until = now() WHERE status = 'enqueued'")
    op.create_index("ix_outbox_leased", "outbox", ["lease_until"],
                    postgresql_where="status IN ('enqueued', 'running')")
    op.create_table(
        "job_effects",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("state", sa.Enum("started", "done", name="effect_state", native_enum=False, length=32),
                  nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_job_effects_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_job_effects")),
    )
    op.create_index(op.f("ix_job_effects_tenant_id"), "job_effects", ["tenant_id"])
    for sql in rls.grant_table_sql("job_effects") + rls.enable_rls_sql("job_effects"):
        op.execute(sql)


def downgrade() -> None:
    op.drop_table("job_effects")
    op.drop_index("ix_outbox_leased", table_name="outbox", postgresql_where="status IN ('enqueued', 'running')")
    op.drop_column("outbox", "lease_token")
    op.drop_column("outbox", "lease_until")
