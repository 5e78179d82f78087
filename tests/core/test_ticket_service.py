"""The ticket service: messages, status/priority/assignee changes, timeline with actors."""

from __future__ import annotations

import pytest

from core.db.session import tenant_scope
from core.tenancy.service import create_agent
from core.tickets import service
from core.tickets.errors import InvalidTransition
from core.tickets.models import ActorKind, Direction, Priority, TicketStatus
from core.tickets.schemas import Actor, NewMessage
from core.tickets.models import Channel
from core.runtime import Runtime
from tests.conftest import make_tenant
from tests.core.factories import inbound, make_ticket


def test_open_ticket_records_ticket_message_and_timeline(runtime: Runtime) -> None:
    tenant, inbox = make_tenant(runtime)
    ticket_id, number = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, customer="Bob@Example.TEST ")
    with tenant_scope(runtime.factory, tenant.id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        messages = service.ticket_messages(session=session, ticket_id=ticket_id)
        kinds = [e.kind for e in service.ticket_timeline(session=session, ticket_id=ticket_id)]
        contact = service.find_or_create_contact(session=session, tenant_id=tenant.id, email="bob@example.test")
    assert (number, ticket.status, ticket.contact_id) == (1, TicketStatus.NEW, contact.id)
    assert [m.direction for m in messages] == [Direction.INBOUND]
    assert kinds == ["ticket.opened", "message.appended"]


def test_every_change_lands_in_the_timeline_with_its_actor(runtime: Runtime) -> None:
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    with tenant_scope(runtime.factory, tenant.id) as session:
        agent = create_agent(session=session, tenant_id=tenant.id, name="Ann", email="ann@support.test")
        actor = Actor(ActorKind.AGENT, str(agent.id), "Ann")
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        service.assign(session=session, ticket=ticket, agent_id=agent.id, actor=actor)
        service.change_priority(session=session, ticket=ticket, priority=Priority.URGENT, actor=actor)
        service.change_status(session=session, ticket=ticket, status=TicketStatus.RESOLVED, actor=actor)
    with tenant_scope(runtime.factory, tenant.id) as session:
        events = service.ticket_timeline(session=session, ticket_id=ticket_id)[2:]
    assert [(e.kind, e.actor_label, e.data["to"]) for e in events] == [
        ("ticket.assignee_changed", "Ann", str(agent.id)),
        ("ticket.priority_changed", "Ann", "urgent"),
        ("ticket.status_changed", "Ann", "resolved"),
    ]


def test_customer_reply_reopens_a_resolved_ticket(runtime: Runtime) -> None:
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    actor = Actor(ActorKind.CONTACT, None, "bob")
    with tenant_scope(runtime.factory, tenant.id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        service.change_status(session=session, ticket=ticket, status=TicketStatus.RESOLVED, actor=actor)
        out = service.append_message(session=session, ticket=ticket, message=inbound("still broken"), actor=actor)
    assert ticket.status is TicketStatus.OPEN
    assert [e.kind for e in out.events] == ["message.appended", "ticket.status_changed"]


def test_first_agent_reply_sets_first_response_and_opens(runtime: Runtime) -> None:
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    reply = NewMessage(direction=Direction.OUTBOUND, source=Channel.SLACK, body_text="Try restic check")
    with tenant_scope(runtime.factory, tenant.id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        service.append_message(session=session, ticket=ticket, message=reply, actor=Actor(ActorKind.AGENT, None, "Ann"))
    assert ticket.first_response_at is not None
    assert ticket.status is TicketStatus.OPEN


def test_internal_note_does_not_count_as_first_response(runtime: Runtime) -> None:
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    note = NewMessage(direction=Direction.NOTE, source=Channel.SLACK, body_text="customer is on v0.9")
    with tenant_scope(runtime.factory, tenant.id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        service.append_message(session=session, ticket=ticket, message=note, actor=Actor(ActorKind.AGENT, None, "Ann"))
    assert (ticket.first_response_at, ticket.status) == (None, TicketStatus.NEW)


def test_closed_ticket_can_only_be_reopened(runtime: Runtime) -> None:
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    actor = Actor(ActorKind.AGENT, None, "Ann")
    with pytest.raises(InvalidTransition, match="closed to pending"):
        with tenant_scope(runtime.factory, tenant.id) as session:
            ticket = service.get_ticket(session=session, ticket_id=ticket_id)
            service.change_status(session=session, ticket=ticket, status=TicketStatus.CLOSED, actor=actor)
            service.change_status(session=session, ticket=ticket, status=TicketStatus.PENDING, actor=actor)


def test_same_dedupe_key_cannot_store_a_message_twice(runtime: Runtime) -> None:
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    from sqlalchemy.exc import IntegrityError

    msg = inbound("dup", dedupe_key="mbox:<abc@x>:sha")
    with tenant_scope(runtime.factory, tenant.id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        service.append_message(session=session, ticket=ticket, message=msg, actor=Actor(ActorKind.CONTACT))
    with pytest.raises(IntegrityError):
        with tenant_scope(runtime.factory, tenant.id) as session:
            ticket = service.get_ticket(session=session, ticket_id=ticket_id)
            service.append_message(session=session, ticket=ticket, message=msg, actor=Actor(ActorKind.CONTACT))
