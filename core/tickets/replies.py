"""Public replies: the one way an agent (or an accepted draft) answers a customer.

Slack, Teams and the admin API call `send_public_reply`; it stores the outbound message as
`pending` and asks the channel's delivery job (registered by its plugin) to send it after the
undo window. Undo/cancel flips the state to `cancelled` before the job runs; the job sends
only `pending` messages, so it is safe to run twice.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from core.errors import ConfigurationError, Conflict
from core.jobs.outbox import enqueue
from core.registry import Registry
from core.tickets import service
from core.tickets.models import Channel, DeliveryState, Direction, Message, Ticket
from core.tickets.schemas import Actor, NewMessage, Outcome

# Tickets opened through the API or by an agent have a customer with an email address.
_DELIVER_VIA = {Channel.EMAIL: "email", Channel.API: "email", Channel.WIDGET: "widget"}


def send_public_reply(
    *,
    session: Session,
    registry: Registry,
    ticket: Ticket,
    text: str,
    actor: Actor,
    author_agent_id: uuid.UUID | None = None,
    html: str | None = None,
    source: Channel = Channel.API,
    delay_seconds: float = 0,
    dedupe_key: str | None = None,
) -> Outcome[Message]:
    route = _DELIVER_VIA.get(ticket.channel, "email")
    job = registry.delivery_jobs.get(route)
    if job is None:
        raise ConfigurationError(f"no delivery for {route} replies is installed")
    out = service.append_message(
        session=session,
        ticket=ticket,
        message=NewMessage(
            direction=Direction.OUTBOUND, source=source, body_text=text, body_html=html, author_agent_id=author_agent_id,
            author_name=actor.label, delivery_state=DeliveryState.PENDING, dedupe_key=dedupe_key,
        ),
        actor=actor,
    )
    session.flush()
    enqueue(
        session=session, tenant_id=ticket.tenant_id, job=job, ticket_id=ticket.id,
        payload={"message_id": str(out.value.id), "ticket_id": str(ticket.id)}, delay_seconds=delay_seconds,
    )
    return out


def cancel_pending_reply(*, session: Session, message: Message) -> None:
    """Undo inside the window: the delivery job will find it cancelled and send nothing."""
    if message.delivery_state is not DeliveryState.PENDING:
        raise Conflict(f"the reply is already {message.delivery_state.value}")
    message.delivery_state = DeliveryState.CANCELLED
