"""Ticket lists and full-text search (core/tickets/queries.py; migrations 0021, 0023, 0027): own tenant only,
the GIN index, and every filter combination paged by cursor gives exactly the tickets a plain scan would."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, create_engine, text

from core.db.session import APP_ROLE, SYSTEM_ROLE, system_scope, tenant_scope
from core.runtime import Runtime
from core.tenancy.service import create_inbox
from core.tickets import queries
from core.tickets.models import TicketStatus
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


def test_search_uses_the_gin_index_where_a_plain_query_under_rls_cannot(runtime: Runtime, owner_url: str) -> None:
    """Index scans counted in this transaction: the function scans ix_ticket_search_doc, a plain query cannot."""
    tenant, inbox = make_tenant(runtime)
    # A rare word in wide documents (a seq scan would read them all): the GIN index wins.
    _bulk_tickets(owner_url, tenant_id=tenant.id, inbox_id=inbox.id, n=2000,
                  body="about word{n} " + " ".join(f"filler{i}" for i in range(150)))
    scans = text("SELECT pg_stat_get_xact_numscans('ix_ticket_search_doc'::regclass)")
    plain = text("SELECT ticket_id FROM ticket_search WHERE doc @@ websearch_to_tsquery('simple'::regconfig, :q)")
    with tenant_scope(runtime.factory, tenant.id) as session:
        session.execute(plain, {"q": "word1007"}).all()
        after_plain = session.execute(scans).scalar_one()
        session.execute(_SEARCH, {"q": "word1007"}).all()
        after_function = session.execute(scans).scalar_one()
    assert (after_plain, after_function > after_plain) == (0, True)


def test_a_query_without_words_finds_nothing(runtime: Runtime) -> None:
    """Punctuation or a lone minus has no lexeme: not "every ticket of the tenant" (the tenant is a lexeme too)."""
    tenant, inbox = make_tenant(runtime)
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Printer jammed")
    assert [_search(runtime, tenant.id, q) for q in ("!!!", "-", '""')] == [set(), set(), set()]


def test_search_pages_through_every_match_newest_first(runtime: Runtime, owner_url: str) -> None:
    """A text-only search asks the function for one page at a time; the cursor still reaches every match,
    and a search with another filter (status) gives the matches of that status, in the same order."""
    tenant, inbox = make_tenant(runtime)
    _bulk_tickets(owner_url, tenant_id=tenant.id, inbox_id=inbox.id, n=30, body="common word{n}")
    with tenant_scope(runtime.factory, tenant.id) as session:
        everything = queries.list_tickets(session=session, where=queries.TicketFilter(), after=None, limit=100)
        expected = [(t.id, t.status) for t in everything]
    assert len(expected) == 30
    for where in (queries.TicketFilter(text="common"),
                  queries.TicketFilter(text="common", statuses=(TicketStatus.OPEN,))):
        wanted = [i for i, status in expected if not where.statuses or status in where.statuses]
        assert _paged(runtime, tenant.id, where, limit=4) == wanted


def test_every_status_inbox_tag_combination_pages_like_a_plain_scan(runtime: Runtime, owner_url: str) -> None:
    """The page's ids come from the covering indexes (migration 0023); every combination, paged by 3 with the
    cursor, equals the tickets filtered and sorted here."""
    tenant, inbox = make_tenant(runtime)
    other = _inbox(runtime, tenant.id)
    for box in (inbox.id, other):
        _bulk_tickets(owner_url, tenant_id=tenant.id, inbox_id=box, n=24, body="x", start=1000 if box == other else 0)
    with tenant_scope(runtime.factory, tenant.id) as session:
        rows = [(t.id, t.status, t.inbox_id, set(t.tags)) for t in queries.list_tickets(
            session=session, where=queries.TicketFilter(), after=None, limit=100)]
    assert len(rows) == 48
    for status in (None, TicketStatus.OPEN, TicketStatus.PENDING):
        for box in (None, inbox.id, other):
            for tag in (None, "tag0", "tag1"):
                where = queries.TicketFilter(statuses=(status,) if status else (), inbox_ids=(box,) if box else (),
                                             tags=(tag,) if tag else ())
                wanted = [i for i, s, b, tags in rows
                          if status in (None, s) and box in (None, b) and (tag is None or tag in tags)]
                assert _paged(runtime, tenant.id, where, limit=3) == wanted, where


def _paged(rt: Runtime, tenant_id: uuid.UUID, where: queries.TicketFilter, *, limit: int) -> list[uuid.UUID]:
    found: list[uuid.UUID] = []
    after = None
    while True:
        with tenant_scope(rt.factory, tenant_id) as session:
            page = queries.list_tickets(session=session, where=where, after=after, limit=limit)
            found += [t.id for t in page]
            if len(page) < limit:
                return found
            after = (page[-1].created_at, page[-1].id)


def _inbox(rt: Runtime, tenant_id: uuid.UUID) -> uuid.UUID:
    with system_scope(rt.factory) as session:
        return create_inbox(session=session, tenant_id=tenant_id, address=f"second-{uuid.uuid4().hex[:8]}@x.test").id


def _bulk_tickets(owner_url: str, *, tenant_id: uuid.UUID, inbox_id: uuid.UUID, n: int,
                  body: str = "about word{n}", start: int = 0) -> None:
    """`n` tickets with one message each (`body`, {n} the ticket number), inserted and analysed by the owner.
    Statuses, tags and creation times vary with the number, some created in the same instant (ties on id)."""
    engine = create_engine(owner_url)
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO tickets (id, tenant_id, number, inbox_id, subject, status, priority, channel, reply_token,
                                 tags, created_at, updated_at)
            SELECT gen_random_uuid(), CAST(:t AS uuid), 1000 + :start + g, :i, 'Bulk ' || g,
                   (ARRAY['new','open','pending'])[1 + g % 3], 'normal', 'email',
                   md5(CAST(:t AS text) || '-' || (:start + g)), ARRAY['tag' || (g % 4), 'all'],
                   now() - (g / 2) * interval '1 minute', now()
            FROM generate_series(1, :n) g"""), {"t": str(tenant_id), "i": inbox_id, "n": n, "start": start})
        conn.execute(text("""
            INSERT INTO messages (id, tenant_id, ticket_id, direction, source, body_text, "references", flags,
                                  delivery_state, created_at)
            SELECT gen_random_uuid(), t.tenant_id, t.id, 'inbound', 'email', replace(:body, '{n}', t.number::text),
                   '{}', '{}', 'n/a', t.created_at
            FROM tickets t WHERE t.tenant_id = CAST(:t AS uuid) AND t.inbox_id = :i AND t.number > 1000 + :start"""),
            {"t": str(tenant_id), "i": inbox_id, "body": body, "start": start})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE tickets"))
        conn.execute(text("ANALYZE messages"))
        conn.execute(text("VACUUM ANALYZE ticket_search"))  # also empties the GIN pending list
    engine.dispose()


def _may_execute(conn: Connection, role: str) -> bool:
    return bool(conn.execute(text("SELECT has_function_privilege(:r, :f, 'EXECUTE')"),
                             {"r": role, "f": SIGNATURE}).scalar_one())
