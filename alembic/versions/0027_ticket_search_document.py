"""ticket search: one search document per ticket, kept current by triggers

Revision ID: 0027
Revises: 0026

Why: after 0023/0024 a search still read one heap page per matching MESSAGE (its ticket_id), then
joined tickets for created_at: ~1.1k message pages per word per tenant at 1M tickets, most of a
cold search's time (bench/api.py --explain: 2.5k buffers read, 1.1 s cold). `ticket_search` holds
one narrow row per ticket: (ticket_id, tenant_id, created_at, doc), doc the stripped tsvector of the
subject and every message's text plus one lexeme for the ticket's tenant and creation month
(core/tickets/search_doc.py builds it and bounds it: a message never fails to insert because of it).
A search walks the tenant's months newest first; each month is one GIN probe (words AND that month's
lexeme: only that tenant-month's matches leave the index) and a top-N by created_at, until the page
is full. A first version ANDed a tenant-wide lexeme instead: every search then decoded the tenant's
whole posting list (8-11 ms hot at 250k tickets) and read one heap row per match of the tenant
(1.2k), p95 281 ms at 1M under load. (tenant_id, created_at, ticket_id) also lets the planner walk a
month's documents when a word is common (each month is planned with its values: EXECUTE ... USING).

The old per-row GIN indexes of tickets and messages and 0024's join index go: the message GIN index
is no longer written on every message insert (the trigger's update of one document is instead).

Triggers (SECURITY DEFINER, owned by the migrating role, so the runtime login needs no write grant
on ticket_search; RLS still holds for a non-superuser owner, the rows' tenant is the caller's):
ticket insert and subject change rebuild; message insert appends its text; a message whose text
changes, that moves to another ticket (split, merge) or is deleted (erasure) rebuilds the ticket(s)
it left, appending to the one it joined; a deleted ticket's document goes by cascade (the
`threadline_eraser` path included: foreign-key actions run as the table owner).

Backfill: every existing ticket, in 16 batches by id; at 1M tickets with 3M messages it took 373 s
(bench/api.py data set, embedded Postgres, 2 shared cores at load 8-16): ticket_search is 487 MB
(heap 313 MB, GIN 79 MB). The migration runs in one transaction, so batches bound each statement,
not the lock (writes to tickets and messages wait for it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from core.db import rls
from core.tickets import search_doc

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

_DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public"

_REFRESH = f"""
CREATE FUNCTION threadline_ticket_search_refresh(p_ticket uuid) RETURNS void
LANGUAGE sql {_DEFINER} AS $$
    INSERT INTO ticket_search AS s (ticket_id, tenant_id, created_at, doc, indexed_bytes)
    SELECT t.id, t.tenant_id, t.created_at, d.doc, d.indexed_bytes
    FROM tickets t CROSS JOIN LATERAL threadline_ticket_search_doc(t.id, t.tenant_id, t.subject, t.created_at) d
    WHERE t.id = p_ticket
    ON CONFLICT (ticket_id) DO UPDATE SET tenant_id = excluded.tenant_id, created_at = excluded.created_at,
        doc = excluded.doc, indexed_bytes = excluded.indexed_bytes
$$
"""

# A new message's text joins its ticket's document while the document has room; the first part that
# does not fit closes it (as threadline_ticket_search_doc does from scratch).
_APPEND = f"""
CREATE FUNCTION threadline_ticket_search_append(p_ticket uuid, p_text text) RETURNS void
LANGUAGE plpgsql {_DEFINER} AS $$
DECLARE
    part text := left(p_text, {search_doc.PART_CHARS});
    n integer := octet_length(part);
BEGIN
    UPDATE ticket_search s SET
        doc = CASE WHEN s.indexed_bytes + n <= {search_doc.DOC_BYTES}
                   THEN s.doc || strip(to_tsvector('simple'::regconfig, part)) ELSE s.doc END,
        indexed_bytes = CASE WHEN s.indexed_bytes + n <= {search_doc.DOC_BYTES}
                             THEN s.indexed_bytes + n ELSE {search_doc.FULL} END
    WHERE s.ticket_id = p_ticket;
    IF NOT FOUND THEN  -- a ticket loaded with the triggers off: build its document whole
        PERFORM threadline_ticket_search_refresh(p_ticket);
    END IF;
END $$
"""

_ON_TICKET = f"""
CREATE FUNCTION threadline_ticket_search_on_ticket() RETURNS trigger
LANGUAGE plpgsql {_DEFINER} AS $$
BEGIN
    PERFORM threadline_ticket_search_refresh(NEW.id);
    RETURN NULL;
END $$
"""

_ON_MESSAGE = f"""
CREATE FUNCTION threadline_ticket_search_on_message() RETURNS trigger
LANGUAGE plpgsql {_DEFINER} AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM threadline_ticket_search_append(NEW.ticket_id, NEW.body_text);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM threadline_ticket_search_refresh(OLD.ticket_id);  -- nothing when the ticket went too
    ELSIF OLD.ticket_id IS DISTINCT FROM NEW.ticket_id THEN
        PERFORM threadline_ticket_search_refresh(OLD.ticket_id);
        PERFORM threadline_ticket_search_append(NEW.ticket_id, NEW.body_text);
    ELSE
        PERFORM threadline_ticket_search_refresh(NEW.ticket_id);
    END IF;
    RETURN NULL;
END $$
"""

_TRIGGERS = (
    "CREATE TRIGGER ticket_search_ticket_insert AFTER INSERT ON tickets "
    "FOR EACH ROW EXECUTE FUNCTION threadline_ticket_search_on_ticket()",
    "CREATE TRIGGER ticket_search_ticket_update AFTER UPDATE OF subject, created_at, tenant_id ON tickets "
    "FOR EACH ROW WHEN (OLD.subject IS DISTINCT FROM NEW.subject OR OLD.created_at IS DISTINCT FROM NEW.created_at "
    "OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id) EXECUTE FUNCTION threadline_ticket_search_on_ticket()",
    "CREATE TRIGGER ticket_search_message_insert AFTER INSERT ON messages "
    "FOR EACH ROW EXECUTE FUNCTION threadline_ticket_search_on_message()",
    "CREATE TRIGGER ticket_search_message_update AFTER UPDATE OF body_text, ticket_id ON messages "
    "FOR EACH ROW WHEN (OLD.body_text IS DISTINCT FROM NEW.body_text OR OLD.ticket_id IS DISTINCT FROM NEW.ticket_id) "
    "EXECUTE FUNCTION threadline_ticket_search_on_message()",
    "CREATE TRIGGER ticket_search_message_delete AFTER DELETE ON messages "
    "FOR EACH ROW EXECUTE FUNCTION threadline_ticket_search_on_message()",
)
_TRIGGER_TABLES = (("ticket_search_ticket_insert", "tickets"), ("ticket_search_ticket_update", "tickets"),
                   ("ticket_search_message_insert", "messages"), ("ticket_search_message_update", "messages"),
                   ("ticket_search_message_delete", "messages"))
_HELPERS = ("threadline_ticket_search_on_ticket()", "threadline_ticket_search_on_message()",
            "threadline_ticket_search_append(uuid, text)", "threadline_ticket_search_refresh(uuid)",
            "threadline_ticket_search_doc(uuid, uuid, text, timestamptz)")

_cursor = search_doc.CURSOR.format(created="$6", id="$7")


def _page(cursor: str) -> str:
    sql = search_doc.SEARCH_PAGE.format(tenant="$1", words="$2", month_query="$3", month_start="$4", month_end="$5",
                                        cursor=cursor, limit="$8")
    return "'" + sql.replace("'", "''") + "'"


_MONTH_QUERY = "quote_literal(" + search_doc.MONTH_LEXEME.format(tenant="tenant", month="month") + ")::tsquery"

# The caller's tenant from app.tenant_id (never an argument); no words, no hits. Months newest first
# (from the cursor's), each one EXECUTE ... USING: planned with its values, the planner sees how common
# the words are (a rare word: the GIN index; a common one: the month's rows newest first). It stops
# when the page is full or before the tenant's oldest document.
_SEARCH = f"""
CREATE OR REPLACE FUNCTION threadline_search_ticket_ids(
    q text, max_rows integer, before_created timestamptz DEFAULT NULL, before_id uuid DEFAULT NULL
) RETURNS SETOF uuid
LANGUAGE plpgsql STABLE {_DEFINER} ROWS 200
AS $$
DECLARE
    tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
    -- The documents keep no positions: a phrase ("a b", a <-> b) matches as its words (a & b).
    words tsquery := regexp_replace(websearch_to_tsquery('simple'::regconfig, q)::text,
                                    '<[0-9]*->|<[0-9]+>', '&', 'g')::tsquery;
    remaining integer := greatest(least(max_rows, 10000), 0);
    oldest timestamptz;
    newest timestamptz;
    month timestamp;  -- the first instant of a month, UTC
    got integer;
BEGIN
    IF tenant IS NULL OR numnode(words) = 0 OR remaining = 0 THEN
        RETURN;
    END IF;
    SELECT min(s.created_at), max(s.created_at) INTO oldest, newest FROM ticket_search s WHERE s.tenant_id = tenant;
    IF oldest IS NULL THEN
        RETURN;
    END IF;
    month := date_trunc('month', least(newest, before_created) AT TIME ZONE 'UTC');
    WHILE remaining > 0 AND (month + interval '1 month') AT TIME ZONE 'UTC' > oldest LOOP
        RETURN QUERY EXECUTE CASE WHEN before_created IS NULL THEN {_page('')} ELSE {_page(_cursor)} END
            USING tenant, words, {_MONTH_QUERY}, month AT TIME ZONE 'UTC',
                  (month + interval '1 month') AT TIME ZONE 'UTC', before_created, before_id, remaining;
        GET DIAGNOSTICS got = ROW_COUNT;
        remaining := remaining - got;
        month := month - interval '1 month';
    END LOOP;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "ticket_search",
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("doc", postgresql.TSVECTOR(), nullable=False),
        sa.Column("indexed_bytes", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_ticket_search_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_search_ticket_id_tickets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_ticket_search")),
    )
    for sql in rls.enable_rls_sql("ticket_search"):
        op.execute(sql)
    # Read by the search function; RLS walls it. Written only by the triggers (their owner's rights).
    op.execute(f"GRANT SELECT ON ticket_search TO {rls.APP_ROLE}")
    op.execute(search_doc.DOC_FUNCTION)
    for sql in (_REFRESH, _APPEND, _ON_TICKET, _ON_MESSAGE):
        op.execute(sql)
    for helper in _HELPERS[2:]:
        op.execute(f"REVOKE ALL ON FUNCTION {helper} FROM PUBLIC")
    # Triggers first: they lock tickets and messages against writes until commit, so no message
    # written while the backfill runs is missed.
    for sql in _TRIGGERS:
        op.execute(sql)
    for lower in range(16):  # backfill before the indexes: one build instead of 1M inserts
        where = f"t.id >= '{lower:x}0000000-0000-0000-0000-000000000000'"
        if lower < 15:
            where += f" AND t.id < '{lower + 1:x}0000000-0000-0000-0000-000000000000'"
        op.execute(search_doc.BACKFILL.format(where=where))
    op.execute("CREATE INDEX ix_ticket_search_doc ON ticket_search USING gin (doc)")
    op.execute("CREATE INDEX ix_ticket_search_tenant_created ON ticket_search (tenant_id, created_at, ticket_id)")
    op.execute(_SEARCH)
    op.execute("DROP INDEX ix_tickets_search")
    op.execute("DROP INDEX ix_messages_search")
    op.execute("DROP INDEX ix_tickets_id_created")


def _revision_0023():  # type: ignore[no-untyped-def]
    path = Path(__file__).with_name("0023_ticket_list_and_search_indexes.py")
    spec = importlib.util.spec_from_file_location("threadline_migration_0023", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    old = _revision_0023()
    op.execute("CREATE INDEX ix_tickets_id_created ON tickets (id) INCLUDE (tenant_id, created_at)")
    op.execute(f"CREATE INDEX ix_tickets_search ON tickets USING gin ({old._doc(old.SUBJECT_DOC)})")
    op.execute(f"CREATE INDEX ix_messages_search ON messages USING gin ({old._doc(old.BODY_DOC)})")
    op.execute(old._function(old._NEW_MATCH))  # CREATE OR REPLACE: back to 0023's SQL body, grants kept
    for name, table in _TRIGGER_TABLES:
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for helper in _HELPERS:
        op.execute(f"DROP FUNCTION {helper}")
    op.drop_table("ticket_search")
