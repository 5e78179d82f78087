"""The ticket service: every change to a ticket goes through here.

Services take `session` keyword-only, never commit, and return events in an Outcome; the edge
commits and records the events in the outbox in the same transaction.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from core.db.session import scoped_tenant
from core.tickets.errors import InvalidTransition, TicketNotFound
from core.tickets.events import DomainEvent, EventKind
from core.tickets.models import (
    Channel,
    Contact,
    DeliveryState,
    Direction,
    Message,
    Priority,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from core.tickets.schemas import Actor, NewMessage, Outcome

# Which statuses may follow which.
_TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.NEW: frozenset({TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.OPEN: frozenset({TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.PENDING: frozenset({TicketStatus.OPEN, TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.RESOLVED: frozenset({TicketStatus.OPEN, TicketStatus.CLOSED}),
    TicketStatus.CLOSED: frozenset({TicketStatus.OPEN}),  # only by a reopening reply or an agent
}

_NEXT_NUMBER = text(
    "INSERT INTO ticket_counters (tenant_id, last_number) VALUES (:tenant, 1) "
    "ON CONFLICT (tenant_id) DO UPDATE SET last_number = ticket_counters.last_number + 1 "
    "RETURNING last_number"
)


def now() -> datetime:
    return datetime.now(UTC)


def normalise_address(address: str) -> str:
    return address.strip().lower()


def next_ticket_number(*, session: Session, tenant_id: uuid.UUID) -> int:
    """Allocate the tenant's next number; the counter row lock orders concurrent creators."""
    return int(session.execute(_NEXT_NUMBER, {"tenant": tenant_id}).scalar_one())


_CONTACT_COLUMNS = "id, tenant_id, email, name, created_at"
_CONTACT_UPSERT = text(
    # One round trip: insert if new (ON CONFLICT DO NOTHING keeps concurrent first mails from
    # failing), else read the existing row.
    "WITH ins AS (INSERT INTO contacts (id, tenant_id, email, name) VALUES (:id, :tenant, :email, :name) "
    f"ON CONFLICT (tenant_id, email) DO NOTHING RETURNING {_CONTACT_COLUMNS}) "
    f"SELECT {_CONTACT_COLUMNS} FROM ins UNION ALL "
    f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE tenant_id = :tenant AND email = :email LIMIT 1"
)


def find_or_create_contact(
    *, session: Session, tenant_id: uuid.UUID, email: str, name: str | None = None
) -> Contact:
    address = normalise_address(email)
    contact = session.execute(
        select(Contact).from_statement(_CONTACT_UPSERT),
        {"id": uuid.uuid4(), "tenant": tenant_id, "email": address, "name": name},
    ).scalar_one_or_none()
    if contact is None:
        # A concurrent first mail from this address inserted it: our INSERT waited and did nothing,
        # and the statement's snapshot predates that commit. A new statement sees it.
        contact = session.execute(
            select(Contact).where(Contact.tenant_id == tenant_id, Contact.email == address)
        ).scalar_one()
    if name and not contact.name:
        contact.name = name
    return contact


def _record(session: Session, ticket: Ticket, kind: str, actor: Actor, data: dict[str, Any]) -> None:
    session.add(
        TicketEvent(
            tenant_id=ticket.tenant_id,
            ticket_id=ticket.id,
            kind=kind,
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_label=actor.label,
            data=data,
        )
    )


def record_event(*, session: Session, ticket: Ticket, kind: str, actor: Actor, data: dict[str, Any]) -> None:
    """A timeline entry for something that is not a field change (reply cancelled, draft sent)."""
    _record(session, ticket, kind, actor, data)


def open_ticket(
    *,
    session: Session,
    tenant_id: uuid.UUID,
    inbox_id: uuid.UUID,
    subject: str,
    channel: Channel,
    contact_id: uuid.UUID | None,
    actor: Actor,
    priority: Priority = Priority.NORMAL,
    first_message: NewMessage | None = None,
    linked_ticket_id: uuid.UUID | None = None,
) -> Outcome[Ticket]:
    ticket = Ticket(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        number=next_ticket_number(session=session, tenant_id=tenant_id),
        inbox_id=inbox_id,
        contact_id=contact_id,
        subject=(subject or "(no subject)")[:998],
        status=TicketStatus.NEW,
        priority=priority,
        channel=channel,
        reply_token=secrets.token_urlsafe(12),
        tags=[],
        linked_ticket_id=linked_ticket_id,
    )
    session.add(ticket)
    session.flush()  # rows referencing the ticket (messages, events) must follow it
    _record(session, ticket, EventKind.TICKET_OPENED, actor, {"number": ticket.number, "subject": ticket.subject})
    events = [DomainEvent(EventKind.TICKET_OPENED, tenant_id, ticket.id, {"number": ticket.number})]
    outcome = Outcome(ticket, events)
    if first_message is not None:
        appended = append_message(session=session, ticket=ticket, message=first_message, actor=actor, touch=False)
        outcome.events += appended.events
        outcome.first_message = appended.value
    return outcome


def append_message(
    *, session: Session, ticket: Ticket, message: NewMessage, actor: Actor, reopen: bool = True, touch: bool = True
) -> Outcome[Message]:
    """Add a message; a customer writing on a pending/resolved/closed ticket reopens it
    (unless `reopen=False`, e.g. an auto-reply must not wake a ticket up)."""
    row = Message(
        id=uuid.uuid4(),
        tenant_id=ticket.tenant_id,
        ticket_id=ticket.id,
        direction=message.direction,
        source=message.source,
        author_contact_id=message.author_contact_id,
        author_agent_id=message.author_agent_id,
        author_name=message.author_name,
        body_text=message.body_text,
        body_html=message.body_html,
        reply_text=message.reply_text,
        email_message_id=message.email_message_id,
        in_reply_to=message.in_reply_to,
        references=list(message.references),
        thread_rule=message.thread_rule,
        thread_reason=message.thread_reason,
        delivery_state=message.delivery_state,
        dedupe_key=message.dedupe_key,
        raw_inbound_id=message.raw_inbound_id,
        flags=list(message.flags),
        sender_auth=message.sender_auth,
        # Python clock, not now(): messages of one transaction must keep their order.
        created_at=now(),
    )
    session.add(row)
    if touch:  # a brand-new ticket's first message must not cost an UPDATE of the ticket
        ticket.updated_at = now()
    _record(
        session,
        ticket,
        EventKind.MESSAGE_APPENDED,
        actor,
        {"message_id": str(row.id), "direction": message.direction.value, "source": message.source.value},
    )
    events = [
        DomainEvent(
            EventKind.MESSAGE_APPENDED,
            ticket.tenant_id,
            ticket.id,
            {"message_id": str(row.id), "direction": message.direction.value},
        )
    ]
    if (
        reopen
        and message.direction is Direction.INBOUND
        and ticket.status in (TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED)
    ):
        events += change_status(session=session, ticket=ticket, status=TicketStatus.OPEN, actor=actor).events
    if message.direction is Direction.OUTBOUND:
        if ticket.first_response_at is None:
            ticket.first_response_at = now()
        if ticket.status is TicketStatus.NEW:
            events += change_status(session=session, ticket=ticket, status=TicketStatus.OPEN, actor=actor).events
    return Outcome(row, events)


def change_status(*, session: Session, ticket: Ticket, status: TicketStatus, actor: Actor) -> Outcome[Ticket]:
    old = ticket.status
    if status == old:
        return Outcome(ticket, [])
    if status not in _TRANSITIONS[old]:
        raise InvalidTransition(f"ticket #{ticket.number} cannot go from {old.value} to {status.value}")
    ticket.status = status
    ticket.updated_at = now()
    if status is TicketStatus.RESOLVED:
        ticket.resolved_at = now()
    elif status is TicketStatus.CLOSED:
        ticket.closed_at = now()
    elif status is TicketStatus.OPEN:
        ticket.resolved_at = None
    data = {"from": old.value, "to": status.value}
    _record(session, ticket, EventKind.STATUS_CHANGED, actor, data)
    return Outcome(ticket, [DomainEvent(EventKind.STATUS_CHANGED, ticket.tenant_id, ticket.id, data)])


def change_priority(*, session: Session, ticket: Ticket, priority: Priority, actor: Actor) -> Outcome[Ticket]:
    old = ticket.priority
    if priority == old:
        return Outcome(ticket, [])
    ticket.priority = priority
    ticket.updated_at = now()
    data = {"from": old.value, "to": priority.value}
    _record(session, ticket, EventKind.PRIORITY_CHANGED, actor, data)
    return Outcome(ticket, [DomainEvent(EventKind.PRIORITY_CHANGED, ticket.tenant_id, ticket.id, data)])


def assign(*, session: Session, ticket: Ticket, agent_id: uuid.UUID | None, actor: Actor) -> Outcome[Ticket]:
    old = ticket.assignee_id
    if agent_id == old:
        return Outcome(ticket, [])
    ticket.assignee_id = agent_id
    ticket.updated_at = now()
    data = {"from": str(old) if old else None, "to": str(agent_id) if agent_id else None}
    _record(session, ticket, EventKind.ASSIGNEE_CHANGED, actor, data)
    return Outcome(ticket, [DomainEvent(EventKind.ASSIGNEE_CHANGED, ticket.tenant_id, ticket.id, data)])


def set_tags(*, session: Session, ticket: Ticket, tags: Sequence[str], actor: Actor) -> Outcome[Ticket]:
    """Replace the tags (trimmed, de-duplicated, order kept)."""
    new = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
    old = list(ticket.tags or [])
    if new == old:
        return Outcome(ticket, [])
    ticket.tags = new
    ticket.updated_at = now()
    data = {"from": old, "to": new}
    _record(session, ticket, EventKind.TAGS_CHANGED, actor, data)
    return Outcome(ticket, [DomainEvent(EventKind.TAGS_CHANGED, ticket.tenant_id, ticket.id, data)])


def set_delivery_state(
    *, session: Session, message: Message, state: DeliveryState, error: str | None = None
) -> None:
    message.delivery_state = state
    message.delivery_error = error


def tenant_of(session: Session, tenant_id: uuid.UUID | None) -> uuid.UUID:
    """The tenant every tenant-owned query filters on explicitly (RLS is the second wall)."""
    resolved = tenant_id if tenant_id is not None else scoped_tenant(session)
    if resolved is None:
        raise RuntimeError("a tenant-owned query needs a tenant: run it in tenant_scope or pass tenant_id")
    return resolved


def ticket_query(*, tenant_id: uuid.UUID, ticket_id: uuid.UUID) -> Select[Ticket]:
    return select(Ticket).where(Ticket.tenant_id == tenant_id, Ticket.id == ticket_id)


def ticket_number_query(*, tenant_id: uuid.UUID, number: int) -> Select[Ticket]:
    return select(Ticket).where(Ticket.tenant_id == tenant_id, Ticket.number == number)


def get_ticket(
    *, session: Session, ticket_id: uuid.UUID, for_update: bool = False, tenant_id: uuid.UUID | None = None
) -> Ticket:
    """`tenant_id` defaults to the session's `tenant_scope` tenant."""
    stmt = ticket_query(tenant_id=tenant_of(session, tenant_id), ticket_id=ticket_id)
    if for_update:
        stmt = stmt.with_for_update()
    ticket = session.execute(stmt).scalar_one_or_none()
    if ticket is None:
        raise TicketNotFound(f"no ticket {ticket_id}")
    return ticket


def get_ticket_by_number(*, session: Session, number: int, tenant_id: uuid.UUID | None = None) -> Ticket:
    """Numbers are per tenant: `tenant_id` defaults to the session's `tenant_scope` tenant."""
    stmt = ticket_number_query(tenant_id=tenant_of(session, tenant_id), number=number)
    ticket = session.execute(stmt).scalar_one_or_none()
    if ticket is None:
        raise TicketNotFound(f"no ticket #{number}")
    return ticket


def list_tickets(
    *,
    session: Session,
    statuses: Sequence[TicketStatus] | None = None,
    assignee_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
    tenant_id: uuid.UUID | None = None,
) -> list[Ticket]:
    stmt = (
        select(Ticket)
        .where(Ticket.tenant_id == tenant_of(session, tenant_id))
        .order_by(Ticket.number.desc())
        .limit(limit)
        .offset(offset)
    )
    if statuses:
        stmt = stmt.where(Ticket.status.in_(list(statuses)))
    if assignee_id is not None:
        stmt = stmt.where(Ticket.assignee_id == assignee_id)
    return list(session.execute(stmt).scalars())


def ticket_messages(*, session: Session, ticket_id: uuid.UUID, tenant_id: uuid.UUID | None = None) -> list[Message]:
    stmt = (
        select(Message)
        .where(Message.tenant_id == tenant_of(session, tenant_id), Message.ticket_id == ticket_id)
        .order_by(Message.created_at, Message.id)
    )
    return list(session.execute(stmt).scalars())


def ticket_timeline(
    *, session: Session, ticket_id: uuid.UUID, tenant_id: uuid.UUID | None = None
) -> list[TicketEvent]:
    stmt = (
        select(TicketEvent)
        .where(TicketEvent.tenant_id == tenant_of(session, tenant_id), TicketEvent.ticket_id == ticket_id)
        .order_by(TicketEvent.id)
    )
    return list(session.execute(stmt).scalars())


def count_tickets(*, session: Session, tenant_id: uuid.UUID | None = None) -> int:
    stmt = select(func.count()).select_from(Ticket).where(Ticket.tenant_id == tenant_of(session, tenant_id))
    return int(session.execute(stmt).scalar_one())
