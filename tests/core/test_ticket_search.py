"""Full-text search through `threadline_search_ticket_ids` (migration 0021): own tenant only, GIN indexes."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, create_engine, text

from core.db.session import APP_ROLE, SYSTEM_ROLE, tenant_scope
from core.runtime import Runtime
from core.tickets import queries
from tests.conftest import make_tenant
from tests.core.factories import make_ticket

SIGNATURE = "threadline_search_ticket_ids(text, integer, timestamptz, uuid)"
_SEARCH = text("SELECT id FROM threadline_search_ticket_ids(:q, 100) AS hits(id)")


def _search(rt: Runtime, tenant_id: uuid.UUID, q: str) -> set[uuid.UUID]:
    with tenant_scope(rt.factory, tenant_id) as session:
        where = queries.TicketFilter(text=q)
        return {t.id for t in queries.list_tickets(session=session, where=where, after=None, limit=50)}


def test_a_word_of_the_subject_and_a_word_of_a_message_body_are_found(runtime: Runtime) -> None:
    """The subject and the first message body ("Hello, my backup fails") are both searched."""
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Printer jammed")
    assert (_search(runtime, tenant.id, "printer"), _search(runtime, tenant.id, "backup")) == ({ticket_id}, {ticket_id})


def test_a_tenant_never_finds_another_tenants_tickets(runtime: Runtime) -> None:
    """Tenant B's ticket matches the words, yet A's search (list and function alike) returns only A's."""
    a, a_inbox = make_tenant(runtime)
    b, b_inbox = make_tenant(runtime)
    mine, _ = make_ticket(runtime, tenant_id=a.id, inbox_id=a_inbox.id, subject="Printer jammed")
    make_ticket(runtime, tenant_id=b.id, inbox_id=b_inbox.id, subject="Printer jammed")
    with tenant_scope(runtime.factory, a.id) as session:
        direct = set(session.execute(_SEARCH, {"q": "printer"}).scalars())
    assert (_search(runtime, a.id, "printer"), direct) == ({mine}, {mine})


def test_the_function_finds_nothing_without_a_tenant_setting(runtime: Runtime) -> None:
    """The tenant comes from app.tenant_id only: with it unset, a direct call returns no ids at all."""
    tenant, inbox = make_tenant(runtime)
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Printer jammed")
    with tenant_scope(runtime.factory, tenant.id) as session:
        session.execute(text("SELECT set_config('app.tenant_id', '', true)"))
        assert session.execute(_SEARCH, {"q": "printer"}).all() == []


def test_with_a_non_superuser_owner_rls_still_applies_inside_and_results_are_the_same(
    runtime: Runtime, owner_url: str
) -> None:
    """Owned by a role without BYPASSRLS (threadline_app, in a rolled-back transaction) it finds only A's ticket."""
    a, a_inbox = make_tenant(runtime)
    b, b_inbox = make_tenant(runtime)
    mine, _ = make_ticket(runtime, tenant_id=a.id, inbox_id=a_inbox.id, subject="Printer jammed")
    make_ticket(runtime, tenant_id=b.id, inbox_id=b_inbox.id, subject="Printer jammed")
    engine = create_engine(owner_url)
    with engine.connect() as conn, conn.begin() as tx:
        conn.execute(text(f"ALTER FUNCTION {SIGNATURE} OWNER TO {APP_ROLE}"))
        conn.execute(text("SELECT set_config('role', :r, true), set_config('app.tenant_id', :t, true)"),
                     {"r": APP_ROLE, "t": str(a.id)})
        found = set(conn.execute(_SEARCH, {"q": "printer"}).scalars())
        tx.rollback()
    engine.dispose()
    assert found == {mine}


def test_only_threadline_app_may_execute_the_search_function(owner_url: str) -> None:
    """EXECUTE is revoked from PUBLIC: neither the system role nor the runtime login itself may call it."""
    engine = create_engine(owner_url)
    with engine.connect() as conn:
        allowed = {role: _may_execute(conn, role) for role in (APP_ROLE, SYSTEM_ROLE, "threadline_runtime")}
    engine.dispose()
    assert allowed == {APP_ROLE: True, SYSTEM_ROLE: False, "threadline_runtime": False}


def test_search_uses_the_gin_indexes_where_a_plain_query_under_rls_cannot(runtime: Runtime, owner_url: str) -> None:
    """Index scans counted in this transaction: the function scans ix_messages_body_fts, a plain query cannot."""
    tenant, inbox = make_tenant(runtime)
    _bulk_tickets(owner_url, tenant_id=tenant.id, inbox_id=inbox.id, n=2000)  # a rare word: the GIN index wins
    scans = text("SELECT pg_stat_get_xact_numscans('ix_messages_body_fts'::regclass)")
    plain = text("SELECT ticket_id FROM messages "
                 "WHERE to_tsvector('simple'::regconfig, body_text) @@ websearch_to_tsquery('simple'::regconfig, :q)")
    with tenant_scope(runtime.factory, tenant.id) as session:
        session.execute(plain, {"q": "word7"}).all()
        after_plain = session.execute(scans).scalar_one()
        session.execute(_SEARCH, {"q": "word7"}).all()
        after_function = session.execute(scans).scalar_one()
    assert (after_plain, after_function > after_plain) == (0, True)


def _bulk_tickets(owner_url: str, *, tenant_id: uuid.UUID, inbox_id: uuid.UUID, n: int) -> None:
    """`n` tickets with one message each ("... wordK ..." with K unique), inserted and analysed by the owner."""
    engine = create_engine(owner_url)
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO tickets (id, tenant_id, number, inbox_id, subject, status, priority, channel, reply_token,
                                 tags, created_at, updated_at)
            SELECT gen_random_uuid(), CAST(:t AS uuid), 1000 + g, :i, 'Bulk ' || g, 'open', 'normal', 'email',
                   md5(CAST(:t AS text) || '-' || g), '{}', now(), now()
            FROM generate_series(1, :n) g"""), {"t": str(tenant_id), "i": inbox_id, "n": n})
        conn.execute(text("""
            INSERT INTO messages (id, tenant_id, ticket_id, direction, source, body_text, "references", flags,
                                  delivery_state, created_at)
            SELECT gen_random_uuid(), t.tenant_id, t.id, 'inbound', 'email', 'about word' || t.number, '{}', '{}',
                   'n/a', t.created_at
            FROM tickets t WHERE t.tenant_id = CAST(:t AS uuid) AND t.number > 1000"""), {"t": str(tenant_id)})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE tickets"))
        conn.execute(text("ANALYZE messages"))
    engine.dispose()


def _may_execute(conn: Connection, role: str) -> bool:
    return bool(conn.execute(text("SELECT has_function_privilege(:r, :f, 'EXECUTE')"),
                             {"r": role, "f": SIGNATURE}).scalar_one())
