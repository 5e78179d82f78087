"""Tenant-owned ticket queries filter `tenant_id` themselves: RLS is the second wall, not the only one.

Proved where RLS does not apply: the owner login (the test server's superuser) sees every tenant's
rows, so only the query's own filter can keep tenant B's ticket #1 out of tenant A's lookup.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.db.session import make_engine, tenant_scope
from core.errors import InvalidInput, NotFound
from core.runtime import Runtime
from core.tenancy.audit import AuditContext
from core.tenancy.service import create_agent
from core.tickets import drafts, operations, replies, service
from core.tickets.errors import TicketNotFound
from core.tickets.models import Channel, Direction, DraftState, Message, Ticket
from core.tickets.schemas import SYSTEM_ACTOR
from tests.conftest import make_tenant
from tests.core.factories import make_ticket


def test_lookups_filter_the_tenant_where_rls_does_not_apply(runtime: Runtime, owner_url: str) -> None:
    a, inbox_a = make_tenant(runtime)
    b, inbox_b = make_tenant(runtime)
    a_id, a_number = make_ticket(runtime, tenant_id=a.id, inbox_id=inbox_a.id)
    b_id, b_number = make_ticket(runtime, tenant_id=b.id, inbox_id=inbox_b.id)
    assert a_number == b_number == 1
    engine = make_engine(owner_url, pool_size=1)
    try:
        with Session(engine) as session:
            bypass = session.execute(
                text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
            ).scalar_one()
            assert bypass, "the owner login must bypass RLS for this test to prove anything"
            assert len(session.execute(select(Ticket).where(Ticket.number == 1)).scalars().all()) == 2

            assert service.get_ticket_by_number(session=session, number=1, tenant_id=a.id).id == a_id
            assert service.get_ticket_by_number(session=session, number=1, tenant_id=b.id).id == b_id
            with pytest.raises(TicketNotFound):
                service.get_ticket(session=session, ticket_id=b_id, tenant_id=a.id)
            assert service.get_ticket(session=session, ticket_id=a_id, tenant_id=a.id, for_update=True).id == a_id
            assert [t.id for t in service.list_tickets(session=session, tenant_id=a.id)] == [a_id]
            assert service.count_tickets(session=session, tenant_id=b.id) == 1
            assert service.ticket_messages(session=session, ticket_id=b_id, tenant_id=a.id) == []
            assert service.ticket_timeline(session=session, ticket_id=b_id, tenant_id=a.id) == []
            assert service.ticket_timeline(session=session, ticket_id=a_id, tenant_id=a.id) != []
    finally:
        engine.dispose()


def test_a_tenant_scope_session_filters_on_its_own_tenant(runtime: Runtime) -> None:
    a, inbox_a = make_tenant(runtime)
    b, inbox_b = make_tenant(runtime)
    make_ticket(runtime, tenant_id=a.id, inbox_id=inbox_a.id)
    b_id, _ = make_ticket(runtime, tenant_id=b.id, inbox_id=inbox_b.id)
    with tenant_scope(runtime.factory, b.id) as session:
        assert service.get_ticket_by_number(session=session, number=1).id == b_id
        stmt = service.ticket_number_query(tenant_id=b.id, number=1)
        assert "tickets.tenant_id = " in str(stmt.compile())


def test_a_lookup_without_any_tenant_is_refused(runtime: Runtime, owner_url: str) -> None:
    engine = make_engine(owner_url, pool_size=1)
    try:
        with Session(engine) as session, pytest.raises(RuntimeError, match="needs a tenant"):
            service.get_ticket(session=session, ticket_id=uuid.uuid4())
    finally:
        engine.dispose()


def test_assigning_another_tenants_agent_is_refused_where_rls_does_not_apply(runtime: Runtime, owner_url: str) -> None:
    a, inbox_a = make_tenant(runtime)
    b, _ = make_tenant(runtime)
    a_id, _ = make_ticket(runtime, tenant_id=a.id, inbox_id=inbox_a.id)
    with tenant_scope(runtime.factory, b.id) as session:
        stranger = create_agent(session=session, tenant_id=b.id, name="Bea", email="bea@b.test").id
    engine = make_engine(owner_url, pool_size=1)
    try:
        with Session(engine) as session, pytest.raises(InvalidInput, match="no active agent"):
            ticket = service.get_ticket(session=session, ticket_id=a_id, tenant_id=a.id)
            operations.update_ticket(session=session, ticket=ticket, changes=operations.TicketChanges(
                assignee_id=stranger), actor=SYSTEM_ACTOR, audit=AuditContext("test"))
    finally:
        engine.dispose()


def _draft_and_message(runtime: Runtime, tenant_id: uuid.UUID, inbox_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """A pending draft on a new ticket of the tenant, and that ticket's customer message."""
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant_id, inbox_id=inbox_id)
    with tenant_scope(runtime.factory, tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        message_id = session.execute(select(Message.id).where(Message.ticket_id == ticket_id,
                                                              Message.direction == Direction.INBOUND)).scalar_one()
        draft = drafts.propose(session=session, ticket=ticket, for_message_id=message_id, text="Run restic unlock.",
                               citations=[], confidence=0.9, answered=True).value
        return draft.id, message_id


def test_deciding_a_draft_and_locking_a_message_filter_the_tenant_where_rls_does_not_apply(
    runtime: Runtime, owner_url: str
) -> None:
    """Another tenant's draft or message, looked up by id alone, is not found: the query's own filter holds."""
    a, inbox_a = make_tenant(runtime)
    b, inbox_b = make_tenant(runtime)
    a_draft, a_message = _draft_and_message(runtime, a.id, inbox_a.id)
    b_draft, b_message = _draft_and_message(runtime, b.id, inbox_b.id)
    engine = make_engine(owner_url, pool_size=1)
    try:
        with Session(engine) as session:
            with pytest.raises(NotFound, match="no such message"):
                replies.lock_message(session=session, message_id=b_message, tenant_id=a.id)
            assert replies.lock_message(session=session, message_id=a_message, tenant_id=a.id).id == a_message
            with pytest.raises(NotFound, match="no such draft"):
                drafts.discard(session=session, draft_id=b_draft, actor=SYSTEM_ACTOR, agent_id=None, tenant_id=a.id)
            with pytest.raises(NotFound, match="no such draft"):
                drafts.send(session=session, registry=runtime.registry, draft_id=b_draft, actor=SYSTEM_ACTOR,
                            agent_id=None, edited_text=None, source=Channel.API,
                            delay_seconds=0, tenant_id=a.id)
            assert drafts.discard(session=session, draft_id=a_draft, actor=SYSTEM_ACTOR, agent_id=None,
                                  tenant_id=a.id).value.state is DraftState.DISCARDED
            session.rollback()
        with Session(engine) as session, pytest.raises(RuntimeError, match="needs a tenant"):
            replies.lock_message(session=session, message_id=a_message)
    finally:
        engine.dispose()
    with tenant_scope(runtime.factory, b.id) as session:  # the default is the scope's tenant
        assert replies.lock_message(session=session, message_id=b_message).id == b_message
        assert drafts.discard(session=session, draft_id=b_draft, actor=SYSTEM_ACTOR,
                              agent_id=None).value.state is DraftState.DISCARDED
