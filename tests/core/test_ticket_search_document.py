"""The per-ticket search document (migration 0027): triggers keep it current through every write path
(new message, subject change, edit, split, merge, erasure), it stays bounded, and search over it finds
exactly the tickets whose subject or messages hold the word."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from core.db.session import tenant_scope
from core.retention.erase import erase_contact
from core.runtime import Runtime
from core.tenancy.audit import AuditContext
from core.tickets import operations, queries, service
from core.tickets.models import Message
from core.tickets.schemas import SYSTEM_ACTOR
from core.tickets.search_doc import DOC_BYTES, FULL, PART_CHARS
from tests.conftest import make_tenant
from tests.core.factories import inbound, make_ticket
from tests.core.test_ticket_search import _paged

AUDIT = AuditContext("test")


def _search(rt: Runtime, tenant_id: uuid.UUID, q: str) -> set[uuid.UUID]:
    with tenant_scope(rt.factory, tenant_id) as session:
        found = queries.list_tickets(session=session, where=queries.TicketFilter(text=q), after=None, limit=50)
        return {t.id for t in found}


def _append(rt: Runtime, tenant_id: uuid.UUID, ticket_id: uuid.UUID, body: str, *,
            customer: str | None = None) -> uuid.UUID:
    with tenant_scope(rt.factory, tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        author = None
        if customer:
            author = service.find_or_create_contact(session=session, tenant_id=tenant_id, email=customer).id
        out = service.append_message(session=session, ticket=ticket, actor=SYSTEM_ACTOR,
                                     message=inbound(body, author_contact_id=author))
        return out.value.id


def test_a_later_message_and_a_new_subject_are_searchable_and_an_old_subject_is_not(runtime: Runtime) -> None:
    """The second message's word is found; after a subject change the old subject's word is gone."""
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Printer jammed")
    _append(runtime, tenant.id, ticket_id, "the toner is empty")
    with tenant_scope(runtime.factory, tenant.id) as session:
        service.get_ticket(session=session, ticket_id=ticket_id).subject = "Scanner offline"
    found = [_search(runtime, tenant.id, q) for q in ("toner", "scanner", "printer", "backup")]
    assert found == [{ticket_id}, {ticket_id}, set(), {ticket_id}]


def test_a_query_matches_words_from_different_messages_and_a_phrase_in_any_order(runtime: Runtime) -> None:
    """One document per ticket without positions: "toner printer" needs both words anywhere in the ticket,
    a quoted phrase finds its words in any order, and an excluded word excludes the whole ticket."""
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Printer jammed")
    _append(runtime, tenant.id, ticket_id, "the toner is empty")
    found = [_search(runtime, tenant.id, q) for q in ("toner printer", '"jammed printer"', "printer -toner")]
    assert found == [{ticket_id}, {ticket_id}, set()]


def test_an_edited_message_is_found_by_its_new_text_only(runtime: Runtime) -> None:
    """A body change rebuilds the document: the replaced word no longer matches."""
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Help")
    message_id = _append(runtime, tenant.id, ticket_id, "draft mentions kangaroo")
    with tenant_scope(runtime.factory, tenant.id) as session:
        session.get_one(Message, message_id).body_text = "draft mentions wombat"
    assert (_search(runtime, tenant.id, "kangaroo"), _search(runtime, tenant.id, "wombat")) == (set(), {ticket_id})


def test_a_split_message_is_found_on_its_new_ticket_only(runtime: Runtime) -> None:
    """Split moves the message: its word now finds the new ticket, not the one it left."""
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Help")
    message_id = _append(runtime, tenant.id, ticket_id, "unrelated question about invoices")
    with tenant_scope(runtime.factory, tenant.id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        new = operations.split_message(session=session, ticket=ticket, message=session.get_one(Message, message_id),
                                       actor=SYSTEM_ACTOR, audit=AUDIT).value.id
    assert _search(runtime, tenant.id, "invoices") == {new}


def test_merged_messages_are_found_on_the_target(runtime: Runtime) -> None:
    """Merge moves every message of the source: their words find the target, not the source."""
    tenant, inbox = make_tenant(runtime)
    source, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="First")
    target, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Second")
    _append(runtime, tenant.id, source, "the cat knocked the router off")
    with tenant_scope(runtime.factory, tenant.id) as session:
        operations.merge_tickets(session=session, source=service.get_ticket(session=session, ticket_id=source),
                                 target=service.get_ticket(session=session, ticket_id=target),
                                 actor=SYSTEM_ACTOR, audit=AUDIT)
    assert _search(runtime, tenant.id, "router") == {target}


def test_an_erased_contacts_words_are_no_longer_found(runtime: Runtime) -> None:
    """Erasure deletes their ticket (through threadline_eraser) and their message on another's ticket:
    neither word matches afterwards, while the other ticket is still found by its own words."""
    tenant, inbox = make_tenant(runtime)
    theirs, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Quokka", customer="eve@x.test")
    other, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Numbat", customer="al@x.test")
    _append(runtime, tenant.id, other, "eve adds platypus here", customer="eve@x.test")
    assert (_search(runtime, tenant.id, "quokka"), _search(runtime, tenant.id, "platypus")) == ({theirs}, {other})
    with tenant_scope(runtime.factory, tenant.id) as session:
        erase_contact(session=session, tenant_id=tenant.id, email="eve@x.test", audit=AUDIT)
    found = [_search(runtime, tenant.id, q) for q in ("quokka", "platypus", "numbat")]
    assert found == [set(), set(), {other}]


def test_a_huge_message_inserts_and_its_first_words_are_searchable(runtime: Runtime) -> None:
    """3 MB of distinct words (a tsvector holds at most 1 MB) still inserts; the message's first words are
    found, its last are not, the document is closed, and a later message still inserts."""
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Log dump")
    huge = " ".join(f"w{i:07d}" for i in range(3_000_000 // 9))
    _append(runtime, tenant.id, ticket_id, huge)  # its first PART_CHARS characters count
    for _ in range((DOC_BYTES - PART_CHARS) // PART_CHARS - 1):
        _append(runtime, tenant.id, ticket_id, "filler " * (PART_CHARS // 6))
    _append(runtime, tenant.id, ticket_id, "zebra " * (PART_CHARS // 5))  # does not fit: closes the document
    _append(runtime, tenant.id, ticket_id, "a small late message about giraffes")
    with tenant_scope(runtime.factory, tenant.id) as session:
        size = session.execute(text("SELECT indexed_bytes FROM ticket_search WHERE ticket_id = :t"),
                               {"t": ticket_id}).scalar_one()
    found = [_search(runtime, tenant.id, q) for q in ("w0000000", "w0001000", "w0333332", "zebra", "giraffes")]
    assert (found, size) == ([{ticket_id}, {ticket_id}, set(), set(), set()], FULL)


def test_search_pages_newest_first_across_months(runtime: Runtime, owner_url: str) -> None:
    """Each document carries its tenant-month and a search walks the months newest first: 14 tickets over
    about seven months, paged by 3 with the cursor, give every ticket holding the word, newest first."""
    tenant, inbox = make_tenant(runtime)
    engine = create_engine(owner_url)
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO tickets (id, tenant_id, number, inbox_id, subject, status, priority, channel, reply_token,
                                 tags, created_at, updated_at)
            SELECT gen_random_uuid(), CAST(:t AS uuid), g, :i, 'Spread ' || g, 'open', 'normal', 'email',
                   md5(CAST(:t AS text) || g), '{}', now() - g * interval '15 days', now()
            FROM generate_series(1, 14) g"""), {"t": str(tenant.id), "i": inbox.id})
        conn.execute(text("""
            INSERT INTO messages (id, tenant_id, ticket_id, direction, source, body_text, "references", flags,
                                  delivery_state, created_at)
            SELECT gen_random_uuid(), t.tenant_id, t.id, 'inbound', 'email',
                   CASE WHEN t.number % 3 = 0 THEN 'nothing here' ELSE 'a marker word' END, '{}', '{}', 'n/a',
                   t.created_at
            FROM tickets t WHERE t.tenant_id = CAST(:t AS uuid)"""), {"t": str(tenant.id)})
        expected = list(conn.execute(text(
            "SELECT t.id FROM tickets t WHERE t.tenant_id = CAST(:t AS uuid) AND t.number % 3 <> 0 "
            "ORDER BY t.created_at DESC, t.id DESC"), {"t": str(tenant.id)}).scalars())
    engine.dispose()
    assert _paged(runtime, tenant.id, queries.TicketFilter(text="marker"), limit=3) == expected


VOCABULARY = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")
_ticket = st.tuples(st.sampled_from(VOCABULARY),  # subject
                    st.lists(st.lists(st.sampled_from(VOCABULARY), max_size=3), min_size=1, max_size=3))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tickets=st.lists(_ticket, min_size=1, max_size=4), word=st.sampled_from(VOCABULARY))
def test_search_finds_exactly_the_tickets_holding_the_word(runtime: Runtime, tickets: list, word: str) -> None:
    """Random tickets (a subject word, messages of random words; the first message is the factory's): a word
    finds exactly the tickets whose subject or some message holds it, as a Python scan says."""
    tenant, inbox = make_tenant(runtime)
    expected = set()
    for subject, messages in tickets:
        ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject=subject)
        for words in messages:
            _append(runtime, tenant.id, ticket_id, " ".join(words))
        if word == subject or any(word in words for words in messages):
            expected.add(ticket_id)
    assert _search(runtime, tenant.id, word) == expected


def test_the_runtime_login_cannot_write_search_documents(runtime: Runtime) -> None:
    """Only the triggers write ticket_search: the tenant role may read its rows (RLS) but not forge one."""
    tenant, inbox = make_tenant(runtime)
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Help")
    with tenant_scope(runtime.factory, tenant.id) as session:
        rows = session.execute(text("SELECT count(*) FROM ticket_search")).scalar_one()
        write = text("SELECT has_table_privilege('ticket_search', 'INSERT, UPDATE, DELETE')")
        may = session.execute(write).scalar_one()
    assert (rows, may) == (1, False)
