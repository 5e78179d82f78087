"""What an agent's action on any surface means: one implementation for Slack and Teams.

Each function is one unit of work (it commits), records the ticket timeline through core
services, writes outbox rows for the side effects, and returns a small result that the
adapter renders. Errors a person should see are `UserError`s; adapters show their text.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from bots.surface.access import Need, NotAllowed
from bots.surface.agents import acting_agent, actor, record
from bots.surface.deps import SurfaceDeps, SurfaceUser
from bots.surface.intents import Command, CommandKind, ThreadIntent, classify_thread_text, help_text
from bots.surface.vocabulary import Vocabulary
from core.attachments.files import FileTooLarge, SharedFile, size_refusal
from core.db.session import system_scope, tenant_scope
from core.errors import InvalidInput, NotFound
from core.jobs.outbox import enqueue, record_events
from core.surfaces.models import PostKind, SeenEvent, SurfacePost
from core.tenancy.models import Inbox
from core.tickets import replies, service
from core.tickets.events import DomainEvent
from core.tickets.models import Channel, Direction, Message, Priority, SurfaceAnchor, Ticket, TicketStatus
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


def _binding_column(surface: str) -> Any:
    return Inbox.slack_channel_id if surface == "slack" else Inbox.teams_channel_id


def tenant_for_request(
    deps: SurfaceDeps, *, surface: str, channel: str | None, workspace_tenant: uuid.UUID | None,
    single_workspace: bool,
) -> uuid.UUID:
    """The tenant a surface request acts for: the inbox bound to its channel, else the tenant of
    the workspace's installation. Never "the first tenant".

    With one bot token (no installation rows) the deployment serves one workspace, so every bound
    channel lives in it: one tenant with bound channels is that workspace's tenant; several are
    ambiguous and refused. Multi-workspace installs never guess (`workspace_tenant` is the answer).
    """
    column = _binding_column(surface)
    with system_scope(deps.factory) as session:
        owner = session.execute(select(Inbox.tenant_id).where(column == channel)).scalars().first() if channel else None
        if owner is not None:
            if workspace_tenant is not None and owner != workspace_tenant:
                raise NotAllowed("this channel belongs to another Threadline tenant than this workspace.")
            return owner
        if workspace_tenant is not None:
            return workspace_tenant
        tenants = set(session.execute(select(Inbox.tenant_id).where(column.is_not(None))).scalars())
    if single_workspace and len(tenants) == 1:
        return tenants.pop()
    if len(tenants) > 1:
        raise NotAllowed("several Threadline tenants use this workspace, so a command outside their channels is "
                         "ambiguous: run it in your inbox's channel.")
    raise NotFound("this channel is not bound to a Threadline inbox; a Threadline admin binds it to an inbox.")


def tenant_for_channel(deps: SurfaceDeps, *, surface: str, channel: str | None) -> uuid.UUID | None:
    """The tenant whose inbox is bound to this channel, or None (no fallback of any kind)."""
    if not channel:
        return None
    with system_scope(deps.factory) as session:
        return session.execute(select(Inbox.tenant_id).where(_binding_column(surface) == channel)).scalars().first()


@dataclass(frozen=True)
class AccessRule:
    """Which channels (or which user group) make a person an allowed agent of this tenant."""

    channels: tuple[str, ...]
    group: str | None


def access_rule(deps: SurfaceDeps, *, tenant_id: uuid.UUID, surface: str, channel: str | None) -> AccessRule:
    """The rule of the inbox bound to `channel`; outside bound channels (a DM, a modal), the rule
    of all the tenant's inboxes on this surface (member of any bound channel, or of any group)."""
    column = _binding_column(surface)
    with tenant_scope(deps.factory, tenant_id) as session:
        rows = session.execute(
            select(column, Inbox.slack_user_group_id).where(Inbox.tenant_id == tenant_id, column.is_not(None))
        ).all()
    here = [r for r in rows if r[0] == channel] or rows
    groups = sorted({g for _c, g in here if g})
    return AccessRule(tuple(sorted({c for c, _g in here})), groups[0] if groups else None)


def _commit_events(deps: SurfaceDeps, session: Session, events: list[DomainEvent]) -> None:
    record_events(session=session, registry=deps.registry, events=events)


def commit_events(deps: SurfaceDeps, session: Session, events: list[DomainEvent]) -> None:
    """Outbox rows for the events, in the action's unit of work."""
    _commit_events(deps, session, events)


def handle_thread_message(
    deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, channel: str, ts: str, text: str,
    files: Sequence[SharedFile] = (), files_job: str | None = None,
) -> ThreadOutcome:
    """An agent wrote in a ticket thread: a note, a public reply after the undo window, or
    (explicit mode) internal text. The same channel+ts twice is one message.

    `files` shared with a public reply go with it: refused at once when they are declared over the
    limits (nothing is stored), else the reply is stored undelivered and `files_job` fetches them,
    attaches them and only then schedules the delivery (the same undo window)."""
    dedupe = f"{user.surface}:{channel}:{ts}"
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        if session.execute(
            select(Message.id).where(Message.tenant_id == ref.tenant_id, Message.dedupe_key == dedupe)
        ).first():
            return ThreadOutcome(None, None)
        ticket = service.get_ticket(session=session, ticket_id=ref.ticket_id, for_update=True)
        inbox = session.get(Inbox, ticket.inbox_id)
        assert inbox is not None
        meaning = classify_thread_text(text, reply_mode=inbox.reply_mode)
        if not meaning.text and not files:
            return ThreadOutcome(None, None)
        agent = acting_agent(session, ref.tenant_id, user)
        who = actor(agent)
        source = SURFACE_CHANNEL[user.surface]
        if meaning.intent is ThreadIntent.PUBLIC_REPLY:
            fetch = bool(files) and files_job is not None
            refusal = size_refusal([(f.name, f.size) for f in files], per_file=deps.settings.attachment_max_file_bytes,
                                   per_reply=deps.settings.attachment_max_reply_bytes) if fetch else None
            if refusal is not None:
                raise FileTooLarge(refusal)
            out = replies.send_public_reply(
                session=session, registry=deps.registry, ticket=ticket, text=meaning.text, actor=who,
                author_agent_id=agent.id, source=source, delay_seconds=deps.settings.undo_seconds, dedupe_key=dedupe,
                deliver=not fetch,
            )
            if fetch:
                assert files_job is not None
                session.flush()
                enqueue(session=session, tenant_id=ref.tenant_id, job=files_job, ticket_id=ticket.id, payload={
                    "message_id": str(out.value.id), "channel": channel, "ts": ts, "user": user.user_id,
                    "files": [{"id": f.ref, "name": f.name, "size": f.size} for f in files]})
            delay = deps.settings.undo_seconds
        else:
            out = service.append_message(
                session=session, ticket=ticket, actor=who,
                message=NewMessage(direction=Direction.NOTE, source=source, body_text=meaning.text,
                                   author_agent_id=agent.id, author_name=agent.name, dedupe_key=dedupe),
            )
            delay = 0
        session.flush()
        session.add(SurfacePost(tenant_id=ref.tenant_id, ticket_id=ticket.id, message_id=out.value.id,
                                surface=user.surface, kind=PostKind.AGENT, channel=channel, ts=ts))
        action = "ticket.replied" if meaning.intent is ThreadIntent.PUBLIC_REPLY else "ticket.noted"
        record(session, ref.tenant_id, user, action=action, target=f"ticket:{ticket.id}",
               data={"message_id": str(out.value.id)})
        _commit_events(deps, session, out.events)
        return ThreadOutcome(meaning.intent, out.value.id, delay)


def _message_for_post(session: Session, tenant_id: uuid.UUID, surface: str, channel: str, ts: str) -> Message | None:
    post = session.execute(
        select(SurfacePost).where(SurfacePost.tenant_id == tenant_id, SurfacePost.surface == surface,
                                  SurfacePost.channel == channel, SurfacePost.ts == ts)
    ).scalar_one_or_none()
    return replies.lock_message(session=session, message_id=post.message_id) if post else None


def _message_target(message: Message) -> tuple[str, dict[str, Any]]:
    return f"ticket:{message.ticket_id}", {"message_id": str(message.id)}


def agent_edited(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, channel: str, ts: str, text: str) -> bool:
    """Editing the surface message inside the undo window changes what is sent."""
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        message = _message_for_post(session, ref.tenant_id, user.surface, channel, ts)
        if message is None or message.direction is not Direction.OUTBOUND:
            return False
        who = actor(acting_agent(session, ref.tenant_id, user))
        inbox = session.get_one(Inbox, session.get_one(Ticket, message.ticket_id).inbox_id)
        meaning = classify_thread_text(text, reply_mode=inbox.reply_mode)
        target, data = _message_target(message)
        if meaning.intent is not ThreadIntent.PUBLIC_REPLY:
            # Edited into a note: the reply is withdrawn and kept as a note.
            make_internal_locked(deps, session, message, who, meaning.text)
            record(session, ref.tenant_id, user, action="ticket.reply_made_internal", target=target, data=data)
            return True
        replies.edit_pending_reply(session=session, message=message, text=meaning.text, actor=who)
        record(session, ref.tenant_id, user, action="ticket.reply_edited", target=target, data=data)
        return True


def agent_deleted(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, channel: str, ts: str) -> bool:
    """Deleting the surface message inside the undo window cancels the reply."""
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        message = _message_for_post(session, ref.tenant_id, user.surface, channel, ts)
        if message is None or message.direction is not Direction.OUTBOUND:
            return False
        out = replies.cancel_pending_reply(session=session, message=message,
                                           actor=actor(acting_agent(session, ref.tenant_id, user)))
        target, data = _message_target(message)
        record(session, ref.tenant_id, user, action="ticket.reply_cancelled", target=target, data=data)
        _commit_events(deps, session, out.events)
        return True


def undo_reply(deps: SurfaceDeps, *, tenant_id: uuid.UUID, message_id: uuid.UUID, user: SurfaceUser) -> None:
    with tenant_scope(deps.factory, tenant_id) as session:
        message = replies.lock_message(session=session, message_id=message_id)
        out = replies.cancel_pending_reply(session=session, message=message,
                                           actor=actor(acting_agent(session, tenant_id, user)))
        target, data = _message_target(message)
        record(session, tenant_id, user, action="ticket.reply_cancelled", target=target, data=data)
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
        make_internal_locked(deps, session, message, actor(acting_agent(session, tenant_id, user)), message.body_text)
        target, data = _message_target(message)
        record(session, tenant_id, user, action="ticket.reply_made_internal", target=target, data=data)


def require(deps: SurfaceDeps, *, tenant_id: uuid.UUID, user: SurfaceUser, need: Need) -> None:
    """Refuse early (before opening a modal) when the agent's role does not allow `need`."""
    with tenant_scope(deps.factory, tenant_id) as session:
        acting_agent(session, tenant_id, user, need=need)


def reply_to_customer(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, text: str) -> uuid.UUID:
    """Explicit mode's "Reply to customer": a public reply with the same undo window."""
    if not text.strip():
        raise InvalidInput("the reply is empty")
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ref.ticket_id, for_update=True)
        agent = acting_agent(session, ref.tenant_id, user)
        out = replies.send_public_reply(
            session=session, registry=deps.registry, ticket=ticket, text=text.strip(), actor=actor(agent),
            author_agent_id=agent.id, source=SURFACE_CHANNEL[user.surface], delay_seconds=deps.settings.undo_seconds,
        )
        record(session, ref.tenant_id, user, action="ticket.replied", target=f"ticket:{ticket.id}",
               data={"message_id": str(out.value.id)})
        _commit_events(deps, session, out.events)
        return out.value.id


def assign_to(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, assignee: SurfaceUser | None) -> str:
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ref.ticket_id, for_update=True)
        actor_agent = acting_agent(session, ref.tenant_id, user)
        target = actor_agent if assignee is None else acting_agent(session, ref.tenant_id, assignee)
        out = service.assign(session=session, ticket=ticket, agent_id=target.id, actor=actor(actor_agent))
        record(session, ref.tenant_id, user, action="ticket.assigned", target=f"ticket:{ticket.id}",
               data={"agent_id": str(target.id)})
        _commit_events(deps, session, out.events)
        return target.name


def set_status(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, status: TicketStatus) -> None:
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ref.ticket_id, for_update=True)
        out = service.change_status(session=session, ticket=ticket, status=status,
                                    actor=actor(acting_agent(session, ref.tenant_id, user)))
        record(session, ref.tenant_id, user, action="ticket.status_changed", target=f"ticket:{ticket.id}",
               data={"status": status.value})
        _commit_events(deps, session, out.events)


def set_priority(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser, priority: Priority) -> None:
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ref.ticket_id, for_update=True)
        out = service.change_priority(session=session, ticket=ticket, priority=priority,
                                      actor=actor(acting_agent(session, ref.tenant_id, user)))
        record(session, ref.tenant_id, user, action="ticket.priority_changed", target=f"ticket:{ticket.id}",
               data={"priority": priority.value})
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
        agent = acting_agent(session, tenant_id, user, need=Need.VIEW)
        active = [TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING]
        rows = service.list_tickets(session=session, statuses=active, assignee_id=agent.id if mine else None, limit=20)
        if not mine:
            rows = [t for t in rows if t.assignee_id is None]
        return [(t.number, t.status.value, t.subject) for t in rows]


def run_command(
    deps: SurfaceDeps, *, tenant_id: uuid.UUID, user: SurfaceUser, command: Command, vocabulary: Vocabulary,
    resolve_user: Callable[[str], SurfaceUser] | None = None,
) -> str:
    """A command's effect, and the text to show the agent (ephemeral), in the surface's words."""
    if command.kind is CommandKind.HELP:
        return help_text(vocabulary)
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
