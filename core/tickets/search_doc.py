"""The per-ticket search document (migration 0027): its limits and the SQL that builds it.

One `ticket_search` row per ticket holds a stripped tsvector of the subject and of every message's
text (notes included, as the admin API shows them), plus its tenant and month as one more lexeme. Triggers
keep it current; this module is shared by the migration (functions and backfill) and bench/api.py
(which bulk-loads with the triggers off, then fills the documents as the migration does). Keep it
backwards compatible: a migration that ran must still render the same SQL.

Limits: a tsvector's lexemes may total at most 1 MB (PostgreSQL raises past it), and a message must
never fail to insert because of its ticket's search document. Each part (subject, message) is cut
to its first `PART_CHARS` characters, and parts are added in order while their running size stays
within `DOC_BYTES`; the first part that does not fit closes the document (later parts are not
searchable). Lexemes are at most the bytes of the text they come from (1.5x for the few characters
whose lower case is longer), so 600 KB of text stays below the limit.
"""

from __future__ import annotations

PART_CHARS = 100_000  # at most 400 KB of UTF-8
DOC_BYTES = 600_000
FULL = DOC_BYTES + 1  # indexed_bytes of a closed document

# The tenant and the month the ticket was created in (UTC) as one lexeme: ' m <tenant uuid> YYYY-MM' (a
# space, which the parser never puts in a lexeme). A search ANDs it with the words and walks the months
# newest first, so the index hands back one tenant-month of matches at a time: the heap rows read per
# page are about the page's own, not every match of the tenant (and no tenant-wide posting list is read).
MONTH_LEXEME = "' m ' || {tenant}::text || ' ' || to_char({month}, 'YYYY-MM')"
UTC_MONTH = "({created} AT TIME ZONE 'UTC')"
_DOC_MONTH = MONTH_LEXEME.format(tenant="p_tenant", month=UTC_MONTH.format(created="p_created"))

# (ticket, tenant, subject, created_at) -> (doc, indexed_bytes): the document from scratch, parts in order.
DOC_FUNCTION = f"""
CREATE OR REPLACE FUNCTION threadline_ticket_search_doc(
    p_ticket uuid, p_tenant uuid, p_subject text, p_created timestamptz, OUT doc tsvector, OUT indexed_bytes integer
) LANGUAGE sql STABLE SET search_path = pg_catalog, public AS $$
    WITH parts AS (
        SELECT 0 AS ord, NULL::timestamptz AS at, NULL::uuid AS id, left(p_subject, {PART_CHARS}) AS txt
        UNION ALL
        SELECT 1, m.created_at, m.id, left(m.body_text, {PART_CHARS}) FROM messages m
        WHERE m.ticket_id = p_ticket AND m.tenant_id = p_tenant
    ), running AS (
        SELECT txt, sum(octet_length(txt)) OVER (ORDER BY ord, at, id) AS total FROM parts
    )
    SELECT strip(to_tsvector('simple'::regconfig,
                             coalesce(string_agg(txt, ' ') FILTER (WHERE total <= {DOC_BYTES}), '')))
           || array_to_tsvector(ARRAY[{_DOC_MONTH}]),
           CASE WHEN max(total) > {DOC_BYTES} THEN {FULL} ELSE coalesce(max(total), 0) END::integer
    FROM running
$$
"""

# Every ticket without a document gets one (the migration, in batches; bench/api.py after a bulk load).
BACKFILL = """
INSERT INTO ticket_search (ticket_id, tenant_id, created_at, doc, indexed_bytes)
SELECT t.id, t.tenant_id, t.created_at, d.doc, d.indexed_bytes
FROM tickets t CROSS JOIN LATERAL threadline_ticket_search_doc(t.id, t.tenant_id, t.subject, t.created_at) d
WHERE {where} AND NOT EXISTS (SELECT 1 FROM ticket_search s WHERE s.ticket_id = t.id)
ON CONFLICT (ticket_id) DO NOTHING
"""

# One month of a tenant's newest matching documents (the search function runs it month by month with
# EXECUTE ... USING, and bench/api.py explains it): placeholders for the tenant, the words, the month
# lexeme as a query, the month's bounds, the cursor clause and the limit.
SEARCH_PAGE = ("SELECT s.ticket_id FROM ticket_search s"
               " WHERE s.tenant_id = {tenant} AND s.created_at >= {month_start} AND s.created_at < {month_end}"
               " AND s.doc @@ ({words} && {month_query}){cursor}"
               " ORDER BY s.created_at DESC, s.ticket_id DESC LIMIT {limit}")
CURSOR = " AND (s.created_at, s.ticket_id) < ({created}, {id})"
