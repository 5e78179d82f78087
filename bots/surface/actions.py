"""What an agent's action on any surface means: one implementation for Slack and Teams.

Each function is one unit of work (it commits), records the ticket timeline through core
services, writes outbox rows for the side effects, and returns a small result that the
adapter renders. Errors a person should see are `UserError`s; adapters show their text.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from bots.surface.deps import SurfaceDeps, SurfaceUser
from bots.surface.intents import Command, CommandKind, ThreadIntent, classify_thread_text
from core.db.session import system_scope, tenant_scope
from core.errors import Conflict, InvalidInput, NotFound
from core.jobs.outbox import record_events
from core.surfaces.models import PostKind, SeenEvent, SurfacePost
from core.tenancy.models import Agent, Inbox
from core.tenancy.service import find_or_create_agent_by_slack_id
from core.tickets import replies, service
from core.tickets.events import DomainEvent
from core.tickets.models import ActorKind, Channel, Direction, Message, Priority, SurfaceAnchor, Ticket, TicketStatus
from core.tickets.schemas import Actor, NewMessage

SURFACE_CHANNEL = {"slack": Channel.SLACK, "teams": Channel.TEAMS}


@dataclass(frozen=True)
class TicketRef:
    tenant_id: uuid.UUID
    ticket_id: uuid.UUID
    number: int


@dataclass(frozen=True)
class ThreadOutcome:
    intent: ThreadIntent | None  # None: a duplicate delivery, nothing done
    message_id: uuid.UUID | None
    undo_seconds: float = 0


def first_time(deps: SurfaceDeps, *, surface: str, event_id: str) -> bool:
    """False when this event id was handled before (retries, duplicate deliveries)."""
    with system_scope(deps.factory) as session:
        inserted = session.execute(
            insert(SeenEvent).values(surface=surface, event_id=event_id).on_conflict_do_nothing().returning(
                SeenEvent.event_id
            )
        ).first()
    return inserted is not None


def ticket_for_thread(deps: SurfaceDeps, *, surface: str, channel: str, thread_ref: str) -> TicketRef | None:
    with system_scope(deps.factory) as session:
        row = session.execute(
            select(SurfaceAnchor.tenant_id, SurfaceAnchor.ticket_id, Ticket.number)
            .join(Ticket, Ticket.id == SurfaceAnchor.ticket_id)
            .where(SurfaceAnchor.surface == surface, SurfaceAnchor.channel == channel,
                   SurfaceAnchor.thread_ref == thread_ref)
        ).first()
    return TicketRef(row[0], row[1], row[2]) if row else None


def tenant_for_channel(deps: SurfaceDeps, *, surface: str, channel: str | None) -> uuid.UUID:
    """The tenant whose inbox is bound to this channel, else the only tenant bound to the surface."""
    column = Inbox.slack_channel_id if surface == "slack" else Inbox.teams_channel_id
    with system_scope(deps.factory) as session:
        if channel:
            owner = session.execute(select(Inbox.tenant_id).where(column == channel)).scalars().first()
            if owner:
                return owner
        tenants = set(session.execute(select(Inbox.tenant_id).where(column.is_not(None))).scalars())
    if len(tenants) == 1:
        return tenants.pop()
    raise NotFound("this channel is not bound to a Threadline inbox (threadline inbox add ... --slack-channel)")


def _agent(session: Session, tenant_id: uuid.UUID, user: SurfaceUser) -> Agent:
    return find_or_create_agent_by_slack_id(
        session=session, tenant_id=tenant_id, slack_user_id=user.user_id, name=user.name, email=user.email
    )


def _actor(agent: Agent) -> Actor:
    return Actor(ActorKind.AGENT, str(agent.id), agent.name)


def _commit_events(deps: SurfaceDeps, session: Session, events: list[DomainEvent]) -> None:
    record_events(session=session, registry=deps.registry, events=events)


def handle_thread_message(
    deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, channel: str, ts: str, text: str
) -> ThreadOutcome:
    """An agent wrote in a ticket thread: a note, a public reply after the undo window, or
    (explicit mode) internal text. The same channel+ts twice is one message."""
    dedupe = f"{user.surface}:{channel}:{ts}"
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        if session.execute(select(Message.id).where(Message.dedupe_key == dedupe)).first():
            return ThreadOutcome(None, None)
        ticket = service.get_ticket(session=session, ticket_id=ref.ticket_id, for_update=True)
        inbox = session.get(Inbox, ticket.inbox_id)
        assert inbox is not None
        meaning = classify_thread_text(text, reply_mode=inbox.reply_mode)
        if not meaning.text:
            return ThreadOutcome(None, None)
        agent = _agent(session, ref.tenant_id, user)
        actor = _actor(agent)
        source = SURFACE_CHANNEL[user.surface]
        if meaning.intent is ThreadIntent.PUBLIC_REPLY:
            out = replies.send_public_reply(
                session=session, registry=deps.registry, ticket=ticket, text=meaning.text, actor=actor,
                author_agent_id=agent.id, source=source, delay_seconds=deps.settings.undo_seconds, dedupe_key=dedupe,
            )
            delay = deps.settings.undo_seconds
        else:
            out = service.append_message(
                session=session, ticket=ticket, actor=actor,
                message=NewMessage(direction=Direction.NOTE, source=source, body_text=meaning.text,
                                   author_agent_id=agent.id, author_name=agent.name, dedupe_key=dedupe),
            )
            delay = 0
        session.flush()
        session.add(SurfacePost(tenant_id=ref.tenant_id, ticket_id=ticket.id, message_id=out.value.id,
                                surface=user.surface, kind=PostKind.AGENT, channel=channel, ts=ts))
        _commit_events(deps, session, out.events)
        return ThreadOutcome(meaning.intent, out.value.id, delay)


def _message_for_post(session: Session, surface: str, channel: str, ts: str) -> Message | None:
    post = session.execute(
        select(SurfacePost).where(SurfacePost.surface == surface, SurfacePost.channel == channel, SurfacePost.ts == ts)
    ).scalar_one_or_none()
    return replies.lock_message(session=session, message_id=post.message_id) if post else None


def agent_edited(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, channel: str, ts: str, text: str) -> bool:
    """Editing the surface message inside the undo window changes what is sent."""
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        message = _message_for_post(session, user.surface, channel, ts)
        if message is None or message.direction is not Direction.OUTBOUND:
            return False
        meaning = classify_thread_text(text, reply_mode=session.get_one(Inbox, session.get_one(Ticket, message.ticket_id).inbox_id).reply_mode)
        if meaning.intent is not ThreadIntent.PUBLIC_REPLY:
            # Edited into a note: the reply is withdrawn and kept as a note.
            make_internal_locked(deps, session, message, _actor(_agent(session, ref.tenant_id, user)), meaning.text)
            return True
        replies.edit_pending_reply(session=session, message=message, text=meaning.text,
                                   actor=_actor(_agent(session, ref.tenant_id, user)))
        return True


def agent_deleted(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, channel: str, ts: str) -> bool:
    """Deleting the surface message inside the undo window cancels the reply."""
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        message = _message_for_post(session, user.surface, channel, ts)
        if message is None or message.direction is not Direction.OUTBOUND:
            return False
        out = replies.cancel_pending_reply(session=session, message=message,
                                           actor=_actor(_agent(session, ref.tenant_id, user)))
        _commit_events(deps, session, out.events)
        return True


def undo_reply(deps: SurfaceDeps, *, tenant_id: uuid.UUID, message_id: uuid.UUID, user: SurfaceUser) -> None:
    with tenant_scope(deps.factory, tenant_id) as session:
        message = replies.lock_message(session=session, message_id=message_id)
        out = replies.cancel_pending_reply(session=session, message=message,
                                           actor=_actor(_agent(session, tenant_id, user)))
        _commit_events(deps, session, out.events)


def make_internal_locked(deps: SurfaceDeps, session: Session, message: Message, actor: Actor, text: str) -> None:
    out = replies.cancel_pending_reply(session=session, message=message, actor=actor)
    ticket = service.get_ticket(session=session, ticket_id=message.ticket_id)
    note = service.append_message(
        session=session, ticket=ticket, actor=actor,
        message=NewMessage(direction=Direction.NOTE, source=message.source, body_text=text,
                           author_agent_id=message.author_agent_id, author_name=message.author_name),
    )
    _commit_events(deps, session, out.events + note.events)


def make_internal(deps: SurfaceDeps, *, tenant_id: uuid.UUID, message_id: uuid.UUID, user: SurfaceUser) -> None:
    """Withdraw a pending reply and keep its text as an internal note."""
    with tenant_scope(deps.factory, tenant_id) as session:
        message = replies.lock_message(session=session, message_id=message_id)
        make_internal_locked(deps, session, message, _actor(_agent(session, tenant_id, user)), message.body_text)


def reply_to_customer(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, text: str) -> uuid.UUID:
    """Explicit mode's "Reply to customer": a public reply with the same undo window."""
    if not text.strip():
        raise InvalidInput("the reply is empty")
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ref.ticket_id, for_update=True)
        agent = _agent(session, ref.tenant_id, user)
        out = replies.send_public_reply(
            session=session, registry=deps.registry, ticket=ticket, text=text.strip(), actor=_actor(agent),
            author_agent_id=agent.id, source=SURFACE_CHANNEL[user.surface], delay_seconds=deps.settings.undo_seconds,
        )
        _commit_events(deps, session, out.events)
        return out.value.id


def assign_to(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, assignee: SurfaceUser | None) -> str:
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ref.ticket_id, for_update=True)
        actor_agent = _agent(session, ref.tenant_id, user)
        target = actor_agent if assignee is None else _agent(session, ref.tenant_id, assignee)
        out = service.assign(session=session, ticket=ticket, agent_id=target.id, actor=_actor(actor_agent))
        _commit_events(deps, session, out.events)
        return target.name


def set_status(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, status: TicketStatus) -> None:
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ref.ticket_id, for_update=True)
        out = service.change_status(session=session, ticket=ticket, status=status,
                                    actor=_actor(_agent(session, ref.tenant_id, user)))
        _commit_events(deps, session, out.events)


def set_priority(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, priority: Priority) -> None:
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ref.ticket_id, for_update=True)
        out = service.change_priority(session=session, ticket=ticket, priority=priority,
                                      actor=_actor(_agent(session, ref.tenant_id, user)))
        _commit_events(deps, session, out.events)


def ticket_by_number(deps: SurfaceDeps, *, tenant_id: uuid.UUID, number: int) -> TicketRef:
    with tenant_scope(deps.factory, tenant_id) as session:
        ticket = service.get_ticket_by_number(session=session, number=number)
        return TicketRef(tenant_id, ticket.id, ticket.number)


def ticket_ref(deps: SurfaceDeps, *, tenant_id: uuid.UUID, ticket_id: uuid.UUID) -> TicketRef:
    with tenant_scope(deps.factory, tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        return TicketRef(tenant_id, ticket.id, ticket.number)


def list_for(deps: SurfaceDeps, *, tenant_id: uuid.UUID, user: SurfaceUser, mine: bool) -> list[tuple[int, str, str]]:
    """(number, status, subject) of the agent's open tickets, or of unassigned open ones."""
    with tenant_scope(deps.factory, tenant_id) as session:
        agent = _agent(session, tenant_id, user)
        active = [TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING]
        rows = service.list_tickets(session=session, statuses=active, assignee_id=agent.id if mine else None, limit=20)
        if not mine:
            rows = [t for t in rows if t.assignee_id is None]
        return [(t.number, t.status.value, t.subject) for t in rows]


def run_command(
    deps: SurfaceDeps, *, tenant_id: uuid.UUID, user: SurfaceUser, command: Command,
    resolve_user: Callable[[str], SurfaceUser] | None = None,
) -> str:
    """A slash command's effect, and the text to show the agent (ephemeral)."""
    from bots.surface.intents import HELP

    if command.kind is CommandKind.HELP:
        return HELP
    if command.kind is CommandKind.INVALID:
        raise InvalidInput(command.error or "invalid command")
    if command.kind in (CommandKind.MINE, CommandKind.OPEN):
        rows = list_for(deps, tenant_id=tenant_id, user=user, mine=command.kind is CommandKind.MINE)
        if not rows:
            return "No tickets." if command.kind is CommandKind.MINE else "No unassigned open tickets."
        return "\n".join(f"#{n} [{status}] {subject}" for n, status, subject in rows)
    assert command.ticket_number is not None
    ref = ticket_by_number(deps, tenant_id=tenant_id, number=command.ticket_number)
    if command.kind is CommandKind.ASSIGN:
        assignee = None if command.user == "me" or resolve_user is None else resolve_user(command.user or "")
        name = assign_to(deps, ref=ref, user=user, assignee=assignee)
        return f"Ticket #{ref.number} assigned to {name}."
    if command.kind is CommandKind.STATUS:
        assert command.status is not None
        set_status(deps, ref=ref, user=user, status=command.status)
        return f"Ticket #{ref.number} is now {command.status.value}."
    if command.kind is CommandKind.PRIORITY:
        assert command.priority is not None
        set_priority(deps, ref=ref, user=user, priority=command.priority)
        return f"Ticket #{ref.number} priority is now {command.priority.value}."
    from bots.surface.draft_actions import request_draft  # draft_actions builds on this module

    request_draft(deps, ref=ref, user=user)
    return f"Asked the knowledge bot for a new draft on #{ref.number}."
