"""Admin API latency at 10k and at 1M tickets: the ticket list, a filtered list and a full-text search.

Data: several tenants (3 inboxes each), tickets with 3 messages each, generated inside an embedded
Postgres with INSERT ... SELECT generate_series (indexes dropped during the load and rebuilt, as a
bulk import would), one database per size; with --data-dir the databases are kept and reused
(generating 1M tickets takes minutes, measuring seconds). Requests go through the real app
(admin_api.create_app: auth, RLS session, pagination, serialisation) in process over ASGI with
httpx (Starlette's TestClient), one client, sequentially; the rate limit is raised so it does not throttle the run.
Run: .venv/bin/python bench/api.py [--tickets 10000 1000000] [--tenants 4] [--requests 200]
     [--data-dir /tmp/tlbench-api] [--explain]
Goals (issue 12): p95(1M) <= 2 x p95(10k), p95 < 200 ms at 1M for a page of 50.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402

from admin_api.app import create_app  # noqa: E402
from admin_api.ratelimit import RateLimit  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import system_scope, tenant_scope  # noqa: E402
from core.infra.embedded import EmbeddedPostgres  # noqa: E402
from core.infra.stack import _ensure_database  # noqa: E402
from core.registry import Registry  # noqa: E402
from core.runtime import Runtime, build_runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy.keys import issue_api_key  # noqa: E402
from core.tenancy.service import create_inbox, create_tenant  # noqa: E402
from core.tickets import search_doc  # noqa: E402
from core.tickets.models import TicketStatus  # noqa: E402
from core.tickets.queries import TicketFilter, ticket_list_statement  # noqa: E402

VOCABULARY = 2000  # message words are tok0..tok1999: a searched word is in ~0.15% of messages
TAGS = 10
# Secondary indexes of the loaded tables are dropped for the bulk load and rebuilt after from their
# own definitions (pg_indexes), as a bulk import would; constraint-backing ones stay.
_SECONDARY_INDEXES = text("""
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = 'public' AND i.tablename IN ('tickets', 'messages', 'ticket_search')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
""")
# The search documents' triggers (migration 0027) are off during the load; the documents are then built
# the way the migration backfills them.
_LOADED_TABLES = ("tickets", "messages")

# Creation times spread over a year, one per ticket (the LATERAL refers to g: uncorrelated, it ran once
# per tenant and gave all of a tenant's tickets the same instant, before the search documents' months).
_TICKETS = text("""
INSERT INTO tickets (id, tenant_id, number, inbox_id, subject, status, priority, channel, reply_token, tags,
                     created_at, updated_at)
SELECT gen_random_uuid(), CAST(:tenant AS uuid), :start + g, (:inboxes ::uuid[])[1 + (g % 3)],
       'Problem ' || g || ' with tok' || (g * 7 % 2000),
       (ARRAY['new','open','pending','resolved','closed'])[1 + (g * 13 % 5)],
       (ARRAY['low','normal','high','urgent'])[1 + (g % 4)], 'email',
       md5(CAST(:tenant AS text) || '-' || (:start + g)), ARRAY['tag' || (g * 3 % 10)],
       c, c + interval '1 hour'
FROM generate_series(1, :n) g, LATERAL (SELECT now() - (random() + 0 * g) * interval '365 days' AS c) t
""")
_MESSAGES = text("""
INSERT INTO messages (id, tenant_id, ticket_id, direction, source, body_text, "references", flags, delivery_state,
                      created_at)
SELECT gen_random_uuid(), t.tenant_id, t.id, 'inbound', 'email',
       'Hello, the backup of tok' || floor(random() * 2000)::int || ' fails with tok' || floor(random() * 2000)::int
       || ' after tok' || floor(random() * 2000)::int || '. Regards', '{}', '{}', 'n/a',
       t.created_at + k * interval '1 minute'
FROM tickets t, generate_series(1, 3) k WHERE t.tenant_id = :tenant AND t.number > :start
""")


def grow(rt: Runtime, tenants: list[tuple[uuid.UUID, list[str]]], total: int) -> float:
    """Add `total` tickets (3 messages each) spread over the tenants; returns seconds."""
    started = time.perf_counter()
    per = total // len(tenants)
    with rt.engine.begin() as conn:
        conn.execute(text("SET maintenance_work_mem = '512MB'"))
        indexes = list(conn.execute(_SECONDARY_INDEXES))
        for name, _ in indexes:
            conn.execute(text(f"DROP INDEX {name}"))
        for table in _LOADED_TABLES:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        for tenant_id, inboxes in tenants:
            conn.execute(_TICKETS, {"tenant": str(tenant_id), "start": 0, "n": per, "inboxes": inboxes})
            conn.execute(_MESSAGES, {"tenant": tenant_id, "start": 0})
            conn.execute(text("INSERT INTO ticket_counters (tenant_id, last_number) VALUES (:t, :n) "
                              "ON CONFLICT (tenant_id) DO UPDATE SET last_number = :n"), {"t": tenant_id, "n": per})
        for table in _LOADED_TABLES:
            conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        # The documents read each ticket's messages by ix_messages_ticket_created: those indexes first,
        # the documents' own after the documents (one build each, as the migration does).
        documents = [ddl for _, ddl in indexes if " ON public.ticket_search " in ddl]
        for ddl in [ddl for _, ddl in indexes if ddl not in documents]:
            conn.execute(text(ddl))
        # Fresh statistics first: without them the backfill's per-ticket message lookups were planned as
        # for empty tables (10k tickets took 3 s, 100k 159 s, 1M over 15 min).
        conn.execute(text("ANALYZE tickets"))
        conn.execute(text("ANALYZE messages"))
        conn.execute(text(search_doc.BACKFILL.format(where="true")))
        for ddl in documents:
            conn.execute(text(ddl))
    analyze(rt)
    return time.perf_counter() - started


def analyze(rt: Runtime) -> None:
    with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE tickets"))
        conn.execute(text("VACUUM ANALYZE messages"))
        conn.execute(text("VACUUM ANALYZE ticket_search"))


def prepare(admin_url: str, total: int, n_tenants: int) -> tuple[Runtime, list[tuple[uuid.UUID, list[str]]], str]:
    """One database per size (bench_<n>), migrated to head; generated once, reused by later runs."""
    url = _ensure_database(admin_url, f"bench_{total}")
    rt = build_runtime(Settings(), database_url=url, redis_url=None, registry=Registry(), pool_size=4)
    upgrade(rt.engine)  # a reused database gets the newer migrations (and their indexes) here
    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT t.id, array_agg(i.id::text ORDER BY i.address) FROM tenants t "
                                 "JOIN inboxes i ON i.tenant_id = t.id WHERE t.name LIKE 'bench %' "
                                 "GROUP BY t.id, t.name ORDER BY t.name")).all()
        have = conn.execute(text("SELECT count(*) FROM tickets")).scalar_one()
    tenants = [(tid, list(inboxes)) for tid, inboxes in rows]
    with system_scope(rt.factory) as session:
        if not tenants:
            for i in range(n_tenants):
                tenant = create_tenant(session=session, name=f"bench {i}")
                inboxes = [str(create_inbox(session=session, tenant_id=tenant.id,
                                            address=f"s{j}-{uuid.uuid4().hex[:6]}@bench.test").id) for j in range(3)]
                tenants.append((tenant.id, inboxes))
        secret = issue_api_key(session=session, tenant_id=tenants[0][0], name="bench").secret
    if have == 0:
        took = grow(rt, tenants, total)
        print(f"\n{total:,} tickets ({3 * total:,} messages, {len(tenants)} tenants) generated in {took:.0f} s")
    else:
        analyze(rt)
        print(f"\n{have:,} tickets ({len(tenants)} tenants) reused from the data dir")
    return rt, tenants, secret


def measure(client: TestClient, headers: dict[str, str], params: list[dict[str, object]],
            n: int) -> tuple[float, float]:
    for p in params[:10]:  # warm-up
        client.get("/api/v1/tickets", headers=headers, params=p)  # type: ignore[arg-type]
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        res = client.get("/api/v1/tickets", headers=headers, params=params[i % len(params)])  # type: ignore[arg-type]
        times.append((time.perf_counter() - t0) * 1000)
        assert res.status_code == 200, res.text
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def explain(rt: Runtime, tenant_id: uuid.UUID, where: TicketFilter) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the list statement the API runs, as the API runs it (tenant scope)."""
    with tenant_scope(rt.factory, tenant_id) as session:
        stmt = ticket_list_statement(where, tenant_id=tenant_id, after=None, limit=51)
        compiled = stmt.compile(dialect=rt.engine.dialect, compile_kwargs={"render_postcompile": True})
        conn = session.connection()
        rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}", dict(compiled.params)).all()
    return "\n".join(f"    {r[0]}" for r in rows)


def explain_search_function(rt: Runtime, tenant_id: uuid.UUID, q: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the first month's page query inside threadline_search_ticket_ids, as its
    owner runs it with its values (the list statement's plan shows the function as one node)."""
    month = "CAST(:month AS timestamp)"
    sql = search_doc.SEARCH_PAGE.format(
        tenant="CAST(:tenant AS uuid)", words="websearch_to_tsquery('simple'::regconfig, :q)",
        month_query="quote_literal(" + search_doc.MONTH_LEXEME.format(tenant="CAST(:tenant AS uuid)", month=month)
                    + ")::tsquery",
        month_start=f"({month} AT TIME ZONE 'UTC')", month_end=f"(({month} + interval '1 month') AT TIME ZONE 'UTC')",
        cursor="", limit="51")
    with rt.engine.connect() as conn:
        newest = conn.execute(text("SELECT date_trunc('month', max(created_at) AT TIME ZONE 'UTC') FROM ticket_search "
                                   "WHERE tenant_id = :t"), {"t": tenant_id}).scalar_one()
        params = {"tenant": str(tenant_id), "q": q, "month": newest}
        rows = conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"), params).all()
    return "\n".join(f"    {r[0]}" for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--data-dir", type=Path, help="keep the generated databases here and reuse them")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of each query")
    args = parser.parse_args()
    pg = EmbeddedPostgres(args.data_dir or Path(tempfile.mkdtemp(prefix="tlbench", dir="/tmp")))
    admin_url = pg.start()
    results: dict[int, dict[str, tuple[float, float]]] = {}
    print("admin API, in-process ASGI (httpx TestClient), embedded Postgres, sequential requests")
    for total in args.tickets:
        rt, tenants, secret = prepare(admin_url, total, args.tenants)
        headers = {"Authorization": f"Bearer {secret}"}
        client = TestClient(create_app(rt, rate_limit=RateLimit(burst=10**9, per_second=1e9)))
        inbox = tenants[0][1][0]
        queries: dict[str, list[dict[str, object]]] = {
            "list (page of 50)": [{"limit": 50}],
            "filtered (status+inbox+tag)": [{"limit": 50, "status": s, "inbox_id": inbox, "tag": f"tag{t}"}
                                            for s in ("open", "pending") for t in range(TAGS)],
            "full-text search": [{"limit": 50, "q": f"tok{w}"} for w in range(17, VOCABULARY, 97)],
        }
        if args.explain:
            samples = {
                "list (page of 50)": TicketFilter(),
                "filtered, a combination with matches": TicketFilter(
                    statuses=(TicketStatus.OPEN,), inbox_ids=(uuid.UUID(inbox),), tags=("tag1",)),
                "filtered, a combination without matches": TicketFilter(
                    statuses=(TicketStatus.OPEN,), inbox_ids=(uuid.UUID(inbox),), tags=("tag2",)),
                "filtered, two statuses (open or pending)": TicketFilter(
                    statuses=(TicketStatus.OPEN, TicketStatus.PENDING)),
                "full-text search": TicketFilter(text="tok17"),
            }
            for name, where in samples.items():
                print(f"  EXPLAIN {name}:\n{explain(rt, tenants[0][0], where)}")
            for q in ("tok17", "hello"):  # a rare word; a word in every message
                plan = explain_search_function(rt, tenants[0][0], q)
                print(f"  EXPLAIN the search function's page query (newest month), {q}:\n{plan}")
        results[total] = {}
        for name, params in queries.items():
            p50, p95 = measure(client, headers, params, args.requests)
            results[total][name] = (p50, p95)
            print(f"  {name:30} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
        rt.close()
    if len(args.tickets) > 1:
        small, large = args.tickets[0], args.tickets[-1]
        print(f"\np95 ratio {large:,} / {small:,}:")
        for name in results[large]:
            print(f"  {name:30} {results[large][name][1] / results[small][name][1]:.2f}")
    pg.stop()


if __name__ == "__main__":
    main()
