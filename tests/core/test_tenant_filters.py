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
from core.errors import InvalidInput
from core.runtime import Runtime
from core.tenancy.audit import AuditContext
from core.tenancy.service import create_agent
from core.tickets import operations, service
from core.tickets.errors import TicketNotFound
from core.tickets.models import Ticket
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
