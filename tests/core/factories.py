"""Small factories for the ticket domain."""

from __future__ import annotations

import uuid

from core.db.session import tenant_scope
from core.jobs.outbox import record_events
from core.runtime import Runtime
from core.tickets import service
from core.tickets.models import Channel, Direction
from core.tickets.schemas import SYSTEM_ACTOR, Actor, NewMessage


def inbound(text: str = "Hello, my backup fails", **kw: object) -> NewMessage:
    return NewMessage(direction=Direction.INBOUND, source=Channel.EMAIL, body_text=text, **kw)  # type: ignore[arg-type]


def make_ticket(
    rt: Runtime,
    *,
    tenant_id: uuid.UUID,
    inbox_id: uuid.UUID,
    subject: str = "Backup fails",
    customer: str = "bob@example.test",
    actor: Actor = SYSTEM_ACTOR,
) -> tuple[uuid.UUID, int]:
    """Open a ticket with a first customer message through the service, as an edge would."""
    with tenant_scope(rt.factory, tenant_id) as session:
        contact = service.find_or_create_contact(session=session, tenant_id=tenant_id, email=customer)
        out = service.open_ticket(
            session=session, tenant_id=tenant_id, inbox_id=inbox_id, subject=subject, channel=Channel.EMAIL,
            contact_id=contact.id, actor=actor, first_message=inbound(author_contact_id=contact.id),
        )
        record_events(session=session, registry=rt.registry, events=out.events)
        return out.value.id, out.value.number
