"""ticket lists and search at a million tickets: filter-ordered covering indexes, tenant-keyed full-text GIN

Revision ID: 0023
Revises: 0022

Measured with bench/api.py at 1M tickets (4 tenants, 3 messages each); the EXPLAINs are in the
issue 12 report.

Filtered lists. A status + inbox (+ tag) filter was served by a BitmapAnd of
`ix_tickets_tenant_status` and `ix_tickets_inbox_id`, then every one of the 8-17k rows of that
status and inbox was read from the heap (6.7k blocks) to test the tag and sort by created_at: 40 ms
hot, 150 ms cold, for 51 rows. The two indexes below yield the keyset order (created_at, id) for a
status, and for an inbox and a status, and INCLUDE the columns the common filters test, so the page
of ids comes from an index-only scan that stops after `limit` matches (core/tickets/queries.py
selects the ids first, then those rows). The first replaces `ix_tickets_tenant_status` (its prefix).

Search. The GIN indexes of 0015 held every tenant's words: the search function fetched every
matching message of every tenant from the heap (4.5k for a word at 1M tickets) and only then kept
the caller's. btree_gin is not available in the embedded Postgres, so the tenant goes into the
indexed tsvector as one more lexeme (' t <uuid>': a space, which the parser never puts in a lexeme)
and into the query (`&&`): GIN intersects the word's and the tenant's posting lists itself. The
function (0021, same signature) uses the new expressions and the caller passes `max_rows` = the page
size when no other filter applies, so only the newest page of matching tickets leaves it.
"""

from __future__ import annotations

from alembic import op
from core.db import rls

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# The index expressions; the function's WHERE clauses repeat them (and core/tickets/models.py declares them).
def _doc(text_column: str, alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    return (f"(to_tsvector('simple'::regconfig, {a}{text_column}) || "
            f"array_to_tsvector(ARRAY[' t ' || {a}tenant_id::text]))")


SUBJECT_DOC, BODY_DOC = "subject::text", "body_text"
# The caller's tenant (as in the policies) as a query lexeme; NULL (no match) when unset.
_TENANT_QUERY = "quote_literal(' t ' || NULLIF(current_setting('app.tenant_id', true), ''))::tsquery"
_WORDS = "websearch_to_tsquery('simple'::regconfig, q)"


def _function(match: str) -> str:
    """`match` renders the condition for a table alias and its text column."""
    # numnode > 0 first: '' && tenant would be the tenant alone (every ticket); no words, no hits.
    return f"""
CREATE OR REPLACE FUNCTION threadline_search_ticket_ids(
    q text, max_rows integer, before_created timestamptz DEFAULT NULL, before_id uuid DEFAULT NULL
) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER ROWS 200
SET search_path = pg_catalog, public
AS $$
    WITH hits AS (
        SELECT m.ticket_id AS id FROM messages m
        WHERE numnode({_WORDS}) > 0 AND m.{rls.TENANT_PREDICATE} AND {match.format(a="m", col=BODY_DOC)}
        UNION
        SELECT t.id FROM tickets t
        WHERE numnode({_WORDS}) > 0 AND t.{rls.TENANT_PREDICATE} AND {match.format(a="t", col=SUBJECT_DOC)}
    )
    SELECT t.id FROM tickets t JOIN hits ON hits.id = t.id
    WHERE t.{rls.TENANT_PREDICATE}
      AND (before_created IS NULL OR (t.created_at, t.id) < (before_created, before_id))
    ORDER BY t.created_at DESC, t.id DESC
    LIMIT greatest(least(max_rows, 10000), 0)
$$
"""


_NEW_MATCH = ("(to_tsvector('simple'::regconfig, {a}.{col}) || "
              "array_to_tsvector(ARRAY[' t ' || {a}.tenant_id::text])) " f"@@ ({_WORDS} && {_TENANT_QUERY})")
_OLD_MATCH = f"to_tsvector('simple'::regconfig, {{a}}.{{col}}) @@ {_WORDS}"


def upgrade() -> None:
    op.execute("DROP INDEX ix_tickets_tenant_status")
    op.execute("CREATE INDEX ix_tickets_tenant_status_created ON tickets "
               "(tenant_id, status, created_at, id) INCLUDE (inbox_id, tags)")
    op.execute("CREATE INDEX ix_tickets_tenant_inbox_status_created ON tickets "
               "(tenant_id, inbox_id, status, created_at, id) INCLUDE (tags)")
    op.execute("DROP INDEX ix_tickets_subject_fts")
    op.execute("DROP INDEX ix_messages_body_fts")
    op.execute(f"CREATE INDEX ix_tickets_search ON tickets USING gin ({_doc(SUBJECT_DOC)})")
    op.execute(f"CREATE INDEX ix_messages_search ON messages USING gin ({_doc(BODY_DOC)})")
    op.execute(_function(_NEW_MATCH))


def downgrade() -> None:
    op.execute(_function(_OLD_MATCH))
    op.execute("DROP INDEX ix_messages_search")
    op.execute("DROP INDEX ix_tickets_search")
    op.execute("CREATE INDEX ix_messages_body_fts ON messages USING gin (to_tsvector('simple'::regconfig, body_text))")
    op.execute("CREATE INDEX ix_tickets_subject_fts ON tickets "
               "USING gin (to_tsvector('simple'::regconfig, subject::text))")
    op.execute("DROP INDEX ix_tickets_tenant_inbox_status_created")
    op.execute("DROP INDEX ix_tickets_tenant_status_created")
    op.execute("CREATE INDEX ix_tickets_tenant_status ON tickets (tenant_id, status)")
