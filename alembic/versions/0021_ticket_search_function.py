"""ticket search through a SECURITY DEFINER function, so the full-text GIN indexes are used under RLS

Revision ID: 0021
Revises: 0020

Why: under RLS the planner evaluates the policy qual (`tenant_id = current_setting(...)`) before any
qual whose function is not LEAKPROOF, and `@@` (ts_match_vq) is not. A non-leakproof qual cannot
become an index condition, so as `threadline_app` the GIN indexes of 0015 were never used: the
tenant's rows were read through `ix_*_tenant_id` and `to_tsvector` ran on every one of them
(search time grew linearly with the tenant's tickets).

The function runs with its owner's rights (the role that migrates) and filters the tenant itself,
with the same predicate as the policies: the tenant is the caller's `app.tenant_id` of this
transaction, never an argument, so a caller searches its own tenant or (setting unset) nothing.
It returns ticket ids newest first, older than the optional (created_at, id) cursor, at most
`max_rows` (clamped to 10,000).

Owner: a superuser (the embedded server, the compose `postgres` user) bypasses RLS, so the GIN
indexes are used. A non-superuser owner without BYPASSRLS is still subject to the policies
(FORCE): the results are the same (the policy and the explicit filter read the same setting),
only the indexes are again unusable and search is as slow as before this revision.
"""

from __future__ import annotations

from alembic import op
from core.db import rls

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

SIGNATURE = "threadline_search_ticket_ids(text, integer, timestamptz, uuid)"

# The to_tsvector expressions must stay those of the 0015 indexes, or the indexes cannot serve them.
FUNCTION = f"""
CREATE FUNCTION threadline_search_ticket_ids(
    q text, max_rows integer, before_created timestamptz DEFAULT NULL, before_id uuid DEFAULT NULL
) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER ROWS 200
SET search_path = pg_catalog, public
AS $$
    WITH hits AS (
        SELECT m.ticket_id AS id FROM messages m
        WHERE m.{rls.TENANT_PREDICATE}
          AND to_tsvector('simple'::regconfig, m.body_text) @@ websearch_to_tsquery('simple'::regconfig, q)
        UNION
        SELECT t.id FROM tickets t
        WHERE t.{rls.TENANT_PREDICATE}
          AND to_tsvector('simple'::regconfig, t.subject::text) @@ websearch_to_tsquery('simple'::regconfig, q)
    )
    SELECT t.id FROM tickets t JOIN hits ON hits.id = t.id
    WHERE t.{rls.TENANT_PREDICATE}
      AND (before_created IS NULL OR (t.created_at, t.id) < (before_created, before_id))
    ORDER BY t.created_at DESC, t.id DESC
    LIMIT greatest(least(max_rows, 10000), 0)
$$
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {rls.APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
