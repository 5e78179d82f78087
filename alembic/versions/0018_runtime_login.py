"""runtime login: `tenants` walled by RLS (a tenant sees only its own row); nobody but the owner creates in public

The runtime login itself is created (and its password kept in step with DATABASE_URL) by
core.db.roles.ensure_runtime_login at the end of every migrate, not here: a revision runs
once, a password changes.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# The tenant's own id is its row's key, so the predicate reads `id`, not `tenant_id`.
_OWN_ROW = "id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def upgrade() -> None:
    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenants FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON tenants USING ({_OWN_ROW}) WITH CHECK ({_OWN_ROW})")
    # PostgreSQL < 15 lets every role create tables in public; the runtime login must own nothing.
    # (A revoke without the right to do it is only a warning, so this is safe for any owner.)
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS tenant_isolation ON tenants")
    op.execute("ALTER TABLE tenants NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenants DISABLE ROW LEVEL SECURITY")
