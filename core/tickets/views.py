"""Read models shared by the CLI and the admin API."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.tickets import service
from core.tickets.models import Contact, Ticket
from core.tickets.schemas import MessagePublic, TicketDetail, TicketEventPublic, TicketPublic


def ticket_detail(*, session: Session, ticket: Ticket) -> TicketDetail:
    contact = session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    return TicketDetail(
        **TicketPublic.model_validate(ticket).model_dump(),
        contact_email=contact.email if contact else None,
        messages=[MessagePublic.model_validate(m) for m in service.ticket_messages(session=session, ticket_id=ticket.id)],
        timeline=[
            TicketEventPublic.model_validate(e) for e in service.ticket_timeline(session=session, ticket_id=ticket.id)
        ],
    )
