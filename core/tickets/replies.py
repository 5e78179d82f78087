"""Public replies: the one way an agent (or an accepted draft) answers a customer.

Slack, Teams and the admin API call `send_public_reply`; it stores the outbound message as
`pending` and asks the channel's delivery job (registered by its plugin) to send it after the
undo window. Undo/cancel flips the state to `cancelled` before the job runs; the job sends
only `pending` messages, so it is safe to run twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.attachments.files import StoredFile, attach
from core.errors import ConfigurationError, Conflict, NotFound
from core.jobs.outbox import enqueue
from core.registry import Registry
from core.tickets import service
from core.tickets.events import DomainEvent, EventKind
from core.tickets.models import Channel, DeliveryState, Direction, Message, Ticket
from core.tickets.schemas import SYSTEM_ACTOR, Actor, NewMessage, Outcome

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
    files: Sequence[StoredFile] = (),
    deliver: bool = True,
) -> Outcome[Message]:
    """`files` (already in the blob store) go with the reply. `deliver=False` stores the reply
    without asking for its delivery yet: the caller still has to fetch its files (a Slack share) and
    calls `schedule_delivery` when they are attached; until then it is pending and can be undone."""
    job = _delivery_job(registry, ticket)
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
    if files:
        attach(session, message=out.value, files=files)
    if deliver:
        enqueue(
            session=session, tenant_id=ticket.tenant_id, job=job, ticket_id=ticket.id,
            payload={"message_id": str(out.value.id), "ticket_id": str(ticket.id)}, delay_seconds=delay_seconds,
        )
    return out


def _delivery_job(registry: Registry, ticket: Ticket) -> str:
    route = _DELIVER_VIA.get(ticket.channel, "email")
    job = registry.delivery_jobs.get(route)
    if job is None:
        raise ConfigurationError(f"no delivery for {route} replies is installed")
    return job


def schedule_delivery(*, session: Session, registry: Registry, message: Message, delay_seconds: float) -> None:
    """Ask for the delivery of a reply stored with `deliver=False` (its files are attached now)."""
    ticket = session.get_one(Ticket, message.ticket_id)
    enqueue(
        session=session, tenant_id=message.tenant_id, job=_delivery_job(registry, ticket), ticket_id=ticket.id,
        payload={"message_id": str(message.id), "ticket_id": str(ticket.id)}, delay_seconds=max(0.0, delay_seconds),
    )


def delivery_event(message: Message) -> DomainEvent:
    return DomainEvent(
        EventKind.DELIVERY_CHANGED, message.tenant_id, message.ticket_id,
        {"message_id": str(message.id), "state": message.delivery_state.value},
    )


def lock_message(*, session: Session, message_id: uuid.UUID, tenant_id: uuid.UUID | None = None) -> Message:
    """Row-lock a message: Undo, edits and the delivery job serialise on it. `tenant_id` defaults to
    the session's `tenant_scope` tenant: filtered explicitly, RLS being the second wall."""
    message = session.execute(
        select(Message).where(Message.tenant_id == service.tenant_of(session, tenant_id), Message.id == message_id)
        .with_for_update()
    ).scalar_one_or_none()
    if message is None:
        raise NotFound("no such message")
    return message


def cancel_pending_reply(*, session: Session, message: Message, actor: Actor = SYSTEM_ACTOR) -> Outcome[Message]:
    """Undo inside the window: the delivery job will find it cancelled and send nothing."""
    if message.delivery_state is not DeliveryState.PENDING:
        raise Conflict(f"too late: the reply is already {message.delivery_state.value}")
    message.delivery_state = DeliveryState.CANCELLED
    ticket = service.get_ticket(session=session, ticket_id=message.ticket_id, tenant_id=message.tenant_id)
    service.record_event(session=session, ticket=ticket, kind="reply.cancelled", actor=actor,
                         data={"message_id": str(message.id)})
    return Outcome(message, [delivery_event(message)])


def edit_pending_reply(*, session: Session, message: Message, text: str, actor: Actor) -> Outcome[Message]:
    """The agent edited their Slack message inside the undo window: send the new text."""
    if message.delivery_state is not DeliveryState.PENDING:
        raise Conflict(f"too late to edit: the reply is already {message.delivery_state.value}")
    message.body_text = text
    ticket = service.get_ticket(session=session, ticket_id=message.ticket_id, tenant_id=message.tenant_id)
    service.record_event(session=session, ticket=ticket, kind="reply.edited", actor=actor,
                         data={"message_id": str(message.id)})
    return Outcome(message, [])
