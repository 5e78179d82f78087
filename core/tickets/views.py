"""Read models shared by the CLI and the admin API."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.tickets import queries, service
from core.tickets.models import Contact, Ticket
from core.tickets.schemas import AttachmentPublic, MessagePublic, TicketDetail, TicketEventPublic, TicketPublic


def ticket_detail(*, session: Session, ticket: Ticket) -> TicketDetail:
    contact = session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    messages = service.ticket_messages(session=session, ticket_id=ticket.id)
    files = queries.message_attachments(session=session, message_ids=[m.id for m in messages])
    return TicketDetail(
        **TicketPublic.model_validate(ticket).model_dump(),
        contact_email=contact.email if contact else None,
        messages=[
            MessagePublic.model_validate(m).model_copy(
                update={"attachments": [AttachmentPublic.model_validate(a) for a in files.get(m.id, [])]})
            for m in messages
        ],
        timeline=[
            TicketEventPublic.model_validate(e) for e in service.ticket_timeline(session=session, ticket_id=ticket.id)
        ],
    )
