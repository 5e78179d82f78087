"""What an operator does to a ticket from the admin API (and the CLI): update, reply, note,
merge, split. Each call records the ticket timeline through core.tickets.service, writes one
admin audit entry (core.tenancy.audit) and returns the domain events for the edge to record.

Replies go through core.tickets.replies.send_public_reply, the call Slack and Teams make, so a
reply from the API is stored, delayed by the undo window and mailed by the same delivery job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidInput
from core.registry import Registry
from core.surfaces.models import PostKind, SurfacePost
from core.tenancy import audit as audit_log
from core.tenancy.audit import AuditContext
from core.tenancy.models import Agent
from core.tickets import replies, service
from core.tickets.events import DomainEvent, EventKind
from core.tickets.models import Channel, Direction, Message, Priority, Ticket, TicketEvent, TicketStatus
from core.tickets.schemas import Actor, NewMessage, Outcome

_UNSET: object = object()


@dataclass(frozen=True)
class TicketChanges:
    """Only the fields that are set change; `assignee_id=None` unassigns."""

    status: TicketStatus | None = None
    priority: Priority | None = None
    assignee_id: uuid.UUID | None | object = _UNSET
    tags: Sequence[str] | None = None


def _target(ticket: Ticket) -> str:
    return f"ticket:{ticket.number}"


def update_ticket(
    *, session: Session, ticket: Ticket, changes: TicketChanges, actor: Actor, audit: AuditContext
) -> Outcome[Ticket]:
    events: list[DomainEvent] = []
    if changes.status is not None:
        events += service.change_status(session=session, ticket=ticket, status=changes.status, actor=actor).events
    if changes.priority is not None:
        events += service.change_priority(session=session, ticket=ticket, priority=changes.priority,
                                          actor=actor).events
    if changes.assignee_id is not _UNSET:
        agent_id = changes.assignee_id if isinstance(changes.assignee_id, uuid.UUID) else None
        if agent_id is not None:
            agent = session.get(Agent, agent_id)
            if agent is None or agent.tenant_id != ticket.tenant_id or not agent.active:  # RLS hides them too
                raise InvalidInput(f"no active agent {agent_id}")
        events += service.assign(session=session, ticket=ticket, agent_id=agent_id, actor=actor).events
    if changes.tags is not None:
        events += service.set_tags(session=session, ticket=ticket, tags=changes.tags, actor=actor).events
    if events:
        audit_log.record(session=session, tenant_id=ticket.tenant_id, audit=audit, action="ticket.updated",
                         target=_target(ticket), data={"changes": [e.kind for e in events]})
    return Outcome(ticket, events)


def add_note(
    *, session: Session, ticket: Ticket, text: str, actor: Actor, audit: AuditContext,
    source: Channel = Channel.API,
) -> Outcome[Message]:
    """An internal note: on the timeline and in the agents' thread, never mailed."""
    out = service.append_message(
        session=session, ticket=ticket, actor=actor,
        message=NewMessage(direction=Direction.NOTE, source=source, body_text=text, author_name=actor.label),
    )
    session.flush()
    audit_log.record(session=session, tenant_id=ticket.tenant_id, audit=audit, action="ticket.note_added",
                     target=_target(ticket), data={"message_id": str(out.value.id)})
    return out


def reply(
    *, session: Session, registry: Registry, ticket: Ticket, text: str, actor: Actor, audit: AuditContext,
    undo_seconds: float, source: Channel = Channel.API,
) -> Outcome[Message]:
    """A public reply, mailed after the undo window exactly like one written in Slack."""
    out = replies.send_public_reply(session=session, registry=registry, ticket=ticket, text=text, actor=actor,
                                    source=source, delay_seconds=undo_seconds)
    audit_log.record(session=session, tenant_id=ticket.tenant_id, audit=audit, action="ticket.replied",
                     target=_target(ticket), data={"message_id": str(out.value.id)})
    return out


def _lock_pair(session: Session, a: Ticket, b: Ticket) -> None:
    """Both rows FOR UPDATE in id order, so two opposite merges cannot deadlock."""
    session.execute(select(Ticket.id).where(Ticket.tenant_id == a.tenant_id, Ticket.id.in_([a.id, b.id]))
                    .order_by(Ticket.id).with_for_update())
    session.refresh(a)
    session.refresh(b)


def _merged_into(session: Session, ticket: Ticket) -> int | None:
    data = session.execute(
        select(TicketEvent.data).where(TicketEvent.tenant_id == ticket.tenant_id, TicketEvent.ticket_id == ticket.id,
                                       TicketEvent.kind == "ticket.merged_into")
    ).scalars().first()
    return int(data["into_number"]) if data else None


def _system_note(session: Session, ticket: Ticket, text: str, actor: Actor) -> list[DomainEvent]:
    """A note the agents' threads show (the surfaces mirror notes of non-chat sources)."""
    return service.append_message(
        session=session, ticket=ticket, actor=actor,
        message=NewMessage(direction=Direction.NOTE, source=Channel.API, body_text=text, author_name="Threadline"),
    ).events


def merge_tickets(
    *, session: Session, source: Ticket, target: Ticket, actor: Actor, audit: AuditContext
) -> Outcome[Ticket]:
    """Move every message of `source` into `target`, close `source` and link it to `target`.

    Replies to the moved mails thread into `target` (threading follows Message-IDs). Posts already
    mirrored in `source`'s chat thread stay there and are not posted again; a note in each thread
    says where the conversation went. Returns `target`.
    """
    if source.id == target.id:
        raise InvalidInput("a ticket cannot be merged into itself")
    _lock_pair(session, source, target)
    for ticket in (source, target):
        into = _merged_into(session, ticket)
        if into is not None:
            raise Conflict(f"ticket #{ticket.number} was already merged into #{into}")
    moved_ids = list(session.execute(select(Message.id).where(
        Message.tenant_id == source.tenant_id, Message.ticket_id == source.id)).scalars())
    session.execute(update(Message).where(Message.tenant_id == source.tenant_id, Message.ticket_id == source.id)
                    .values(ticket_id=target.id))
    session.execute(update(SurfacePost).where(SurfacePost.message_id.in_(moved_ids)).values(ticket_id=target.id))
    target.tags = list(dict.fromkeys([*(target.tags or []), *(source.tags or [])]))
    target.updated_at = service.now()
    source.linked_ticket_id = target.id
    events = service.change_status(session=session, ticket=source, status=TicketStatus.CLOSED, actor=actor).events
    data = {"from_number": source.number, "into_number": target.number, "messages_moved": len(moved_ids)}
    service.record_event(session=session, ticket=source, kind="ticket.merged_into", actor=actor, data=data)
    service.record_event(session=session, ticket=target, kind="ticket.merged_from", actor=actor, data=data)
    who = actor.label or "an operator"
    events += _system_note(session, source, f"Merged into #{target.number} by {who}: its {len(moved_ids)} "
                           f"message(s) now live there.", actor)
    events += _system_note(session, target, f"#{source.number} (“{source.subject}”) was merged into this "
                           f"ticket by {who}: {len(moved_ids)} message(s) moved here.", actor)
    events += [DomainEvent(EventKind.MERGED, t.tenant_id, t.id, data) for t in (source, target)]
    audit_log.record(session=session, tenant_id=target.tenant_id, audit=audit, action="ticket.merged",
                     target=_target(source), data=data)
    return Outcome(target, events)


def split_message(
    *, session: Session, ticket: Ticket, message: Message, actor: Actor, audit: AuditContext
) -> Outcome[Ticket]:
    """Move one message (and its attachments) into a new ticket linked to this one; returns it.

    The new ticket gets its own chat thread with the message in it; a note in each thread says so.
    """
    session.execute(select(Ticket.id).where(Ticket.tenant_id == ticket.tenant_id, Ticket.id == ticket.id)
                    .with_for_update())
    count = session.execute(select(func.count()).select_from(Message).where(
        Message.tenant_id == ticket.tenant_id, Message.ticket_id == ticket.id))
    if int(count.scalar_one()) <= 1:
        raise Conflict(f"message {message.id} is the only message of ticket #{ticket.number}: nothing to split")
    out = service.open_ticket(
        session=session, tenant_id=ticket.tenant_id, inbox_id=ticket.inbox_id, subject=ticket.subject,
        channel=ticket.channel, contact_id=message.author_contact_id or ticket.contact_id, actor=actor,
        priority=ticket.priority, linked_ticket_id=ticket.id,
    )
    new = out.value
    message.ticket_id = new.id
    # Mirror posts of the old thread are forgotten so the new thread gets the message; the agent's
    # own chat posts (replies, notices) follow the message for undo/edit/delivery updates.
    session.execute(update(SurfacePost).where(SurfacePost.message_id == message.id).values(ticket_id=new.id))
    session.execute(delete(SurfacePost).where(SurfacePost.message_id == message.id,
                                              SurfacePost.kind == PostKind.MESSAGE))
    ticket.updated_at = service.now()
    data = {"from_number": ticket.number, "new_number": new.number, "message_id": str(message.id)}
    service.record_event(session=session, ticket=ticket, kind="ticket.split", actor=actor, data=data)
    service.record_event(session=session, ticket=new, kind="ticket.split_from", actor=actor, data=data)
    session.flush()
    who = actor.label or "an operator"
    events = list(out.events)
    events.append(DomainEvent(EventKind.MESSAGE_APPENDED, new.tenant_id, new.id,
                              {"message_id": str(message.id), "direction": message.direction.value}))
    events += _system_note(session, ticket, f"A message was split into #{new.number} by {who}.", actor)
    events += _system_note(session, new, f"Split from #{ticket.number} by {who}.", actor)
    events += [DomainEvent(EventKind.SPLIT, t.tenant_id, t.id, data) for t in (ticket, new)]
    audit_log.record(session=session, tenant_id=ticket.tenant_id, audit=audit, action="ticket.split",
                     target=_target(ticket), data=data)
    return Outcome(new, events)
