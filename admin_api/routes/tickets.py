"""Tickets for admins: list and show (read-only here; agents act from Slack)."""

from __future__ import annotations

import uuid

from fastapi import Query
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from admin_api.conventions import admin_router
from admin_api.deps import RuntimeDep, SessionDep
from core.errors import InvalidInput
from core.jobs.outbox import record_events
from core.tenancy.models import Inbox
from core.tenancy.service import is_email_address
from core.tickets import service
from core.tickets.models import ActorKind, Channel, Direction, Priority, TicketStatus
from core.tickets.schemas import Actor, NewMessage, TicketDetail, TicketPublic
from core.tickets.views import ticket_detail


class TicketCreate(BaseModel):
    subject: str = Field(min_length=1, max_length=998)
    customer_email: str = Field(max_length=320)
    customer_name: str | None = Field(default=None, max_length=200)
    text: str = Field(min_length=1, max_length=200_000)
    priority: Priority = Priority.NORMAL
    inbox_id: uuid.UUID | None = None

    @field_validator("customer_email")
    @classmethod
    def _address(cls, value: str) -> str:
        # Deliberately lenient (local and .test domains are real in helpdesks); only shape is checked.
        if not is_email_address(value):
            raise ValueError("is not an email address")
        return value.strip()

router = admin_router("tickets")


@router.get("/tickets", response_model=list[TicketPublic])
def list_tickets(
    session: SessionDep,
    status: list[TicketStatus] | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0),
) -> list[TicketPublic]:
    rows = service.list_tickets(session=session, statuses=status, limit=limit, offset=offset)
    return [TicketPublic.model_validate(t) for t in rows]


@router.get("/tickets/{number}", response_model=TicketDetail)
def show_ticket(number: int, session: SessionDep) -> TicketDetail:
    return ticket_detail(session=session, ticket=service.get_ticket_by_number(session=session, number=number))


@router.post("/tickets", response_model=TicketDetail, status_code=201)
def create_ticket(body: TicketCreate, session: SessionDep, runtime: RuntimeDep) -> TicketDetail:
    """Open a ticket on behalf of a customer (phone call, import, another system)."""
    stmt = select(Inbox).order_by(Inbox.created_at).limit(1)
    if body.inbox_id:
        stmt = select(Inbox).where(Inbox.id == body.inbox_id)
    inbox = session.execute(stmt).scalar_one_or_none()
    if inbox is None:
        raise InvalidInput("no such inbox" if body.inbox_id else "this tenant has no inbox yet")
    contact = service.find_or_create_contact(
        session=session, tenant_id=inbox.tenant_id, email=body.customer_email, name=body.customer_name
    )
    out = service.open_ticket(
        session=session, tenant_id=inbox.tenant_id, inbox_id=inbox.id, subject=body.subject, channel=Channel.API,
        contact_id=contact.id, actor=Actor(ActorKind.API, None, "admin API"), priority=body.priority,
        first_message=NewMessage(
            direction=Direction.INBOUND, source=Channel.API, body_text=body.text, author_contact_id=contact.id,
            author_name=body.customer_name or body.customer_email,
        ),
    )
    record_events(session=session, registry=runtime.registry, events=out.events)
    return ticket_detail(session=session, ticket=out.value)
