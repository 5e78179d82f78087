"""Notification mail to agents (issue 16): what happened on a ticket, and how to answer by mail.

Job "email.notify_agents" is subscribed to the ticket events; it decides who wants to hear
about this one (`recipients`, pure), then mails each agent through the same relay as replies:
the customer's message, the ticket's state, the pending draft, and a one-line help. Reply-To
carries the agent's own token for this ticket (core/tickets/agent_tokens.py), and the
notification's Message-ID is stored so that a reply threads by headers as well.

At most once per (outbox row, agent) through the effects ledger, the send outside any
transaction (issue 10). Never to the agent who caused the event, never for automatic mail.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.db.session import tenant_scope
from core.jobs import effects, lease
from core.registry import JobContext
from core.tenancy.models import Agent, AgentNotification, AgentRole, Inbox
from core.tickets import agent_tokens
from core.tickets.events import EventKind
from core.tickets.intents import MAIL_HELP
from core.tickets.models import Contact, Direction, Draft, DraftState, Message, Ticket, TicketEvent
from inbound.email import compose
from inbound.email.compose import OutgoingEmail
from inbound.email.outbound import (
    AUTOMATIC_FLAGS,
    Letter,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    relay_from_settings,
    send_letter,
)

log = logging.getLogger(__name__)

NOTIFY_JOB = "email.notify_agents"
EVENTS = (EventKind.TICKET_OPENED, EventKind.MESSAGE_APPENDED, EventKind.ASSIGNEE_CHANGED, EventKind.DRAFT_CHANGED)
_NAMESPACE = uuid.UUID("9d3c1a4e-2b7f-4c65-8e0a-6f1d2c3b4a59")
_MAX_QUOTED = 6000  # characters of the customer's message or the draft in one notification
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


# ---- who hears about what (pure) ----


@dataclass(frozen=True)
class AgentFacts:
    id: uuid.UUID
    email: str | None
    active: bool
    role: AgentRole
    prefs: agent_tokens.NotifyPrefs


@dataclass(frozen=True)
class EventFacts:
    kind: str
    assignee_id: uuid.UUID | None
    actor_agent_id: uuid.UUID | None  # the agent who caused the event, if one did
    automatic: bool  # the customer message behind it is automatic mail (auto-reply, bounce, list, loop)
    first_message: bool  # MESSAGE_APPENDED of a ticket's first message: TICKET_OPENED covers it
    inbound: bool  # MESSAGE_APPENDED: the customer wrote
    assigned_to: uuid.UUID | None  # ASSIGNEE_CHANGED: the new assignee
    draft_ready: bool  # DRAFT_CHANGED to pending


def recipients(event: EventFacts, agents: list[AgentFacts]) -> list[tuple[uuid.UUID, str]]:
    """(agent id, reason) for each agent to mail; reasons: new-ticket, customer-reply, assigned, draft."""
    if event.automatic:
        return []
    able = {a.id: a for a in agents if a.active and a.email and a.role is not AgentRole.READ_ONLY}
    chosen: list[tuple[uuid.UUID, str]] = []
    if event.kind == EventKind.TICKET_OPENED:
        chosen = [(a.id, "new-ticket") for a in able.values() if a.prefs.new_tickets]
    elif event.kind == EventKind.MESSAGE_APPENDED and event.inbound and not event.first_message:
        owner = able.get(event.assignee_id) if event.assignee_id else None
        chosen = [(owner.id, "customer-reply")] if owner and owner.prefs.customer_replies else []
    elif event.kind == EventKind.ASSIGNEE_CHANGED and event.assigned_to:
        owner = able.get(event.assigned_to)
        chosen = [(owner.id, "assigned")] if owner and owner.prefs.assigned else []
    elif event.kind == EventKind.DRAFT_CHANGED and event.draft_ready:
        owner = able.get(event.assignee_id) if event.assignee_id else None
        chosen = [(owner.id, "draft")] if owner and owner.prefs.drafts else []
    return [(agent_id, reason) for agent_id, reason in chosen if agent_id != event.actor_agent_id]


# ---- the job ----


@dataclass(frozen=True)
class _Planned:
    key: str
    agent_id: uuid.UUID
    letter: Letter


def notify_agents(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job "email.notify_agents": payload is a ticket event (core/jobs/outbox.record_events), or a
    refusal to answer (`refusal_payload`)."""
    if payload.get("event") == REFUSAL_EVENT:
        send_refusal(ctx, payload)
        return
    if not payload.get("ticket_id"):
        return
    ticket_id = uuid.UUID(str(payload["ticket_id"]))
    lease.checkpoint()
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        planned = _plan(ctx, session, ticket_id, payload)
    if not planned:
        return
    relay = relay_from_settings(ctx.settings)
    outcomes: list[tuple[_Planned, Exception | None]] = []
    for item in planned:
        try:
            send_letter(relay, item.letter)
        except (PermanentDeliveryError, TemporaryDeliveryError) as exc:
            outcomes.append((item, exc))
        else:
            outcomes.append((item, None))
    retry: Exception | None = None
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        for item, error in outcomes:
            if error is None:
                effects.complete(session, key=item.key, result={"email_message_id": item.letter.mail.message_id})
                continue
            effects.forget(session, key=item.key)  # refused cleanly: a retry may send it
            log.info("agent notification not sent", extra={"agent_id": str(item.agent_id), "error": str(error)})
            if isinstance(error, TemporaryDeliveryError):
                retry = error
    if retry is not None:
        raise retry


def _plan(ctx: JobContext, session: Session, ticket_id: uuid.UUID, payload: dict[str, Any]) -> list[_Planned]:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return []
    event = _facts(session, ticket, payload)
    agents = list(session.execute(select(Agent).where(Agent.tenant_id == ticket.tenant_id)).scalars())
    chosen = recipients(event, [AgentFacts(a.id, a.email, a.active, a.role, agent_tokens.NotifyPrefs.of(a))
                                for a in agents])
    if not chosen:
        return []
    by_id = {a.id: a for a in agents}
    inbox = session.get_one(Inbox, ticket.inbox_id)
    planned: list[_Planned] = []
    for agent_id, reason in chosen:
        agent = by_id[agent_id]
        key = f"{NOTIFY_JOB}:{ctx.outbox_id}:{agent_id}"
        if effects.begin(session, tenant_id=ticket.tenant_id, key=key, outbox_id=ctx.outbox_id) is not None:
            continue  # sent, or an earlier attempt stopped mid-send: never a second copy
        token = agent_tokens.token_for(session=session, tenant_id=ticket.tenant_id, agent_id=agent_id,
                                       ticket_id=ticket.id)
        earlier = agent_tokens.notification_ids(session=session, token_id=token.id)
        domain = compose.domain_of(inbox.address)
        message_id = f"{uuid.uuid5(_NAMESPACE, key)}@{domain}"  # the same id on every attempt
        session.execute(insert(AgentNotification).values(
            id=uuid.uuid4(), tenant_id=ticket.tenant_id, token_id=token.id, email_message_id=message_id,
            reason=reason).on_conflict_do_nothing(index_elements=["email_message_id"]))
        assert agent.email is not None  # recipients() only picks agents with an address
        mail = OutgoingEmail(
            from_address=inbox.address,
            from_name=f"{inbox.name} (Threadline)",
            to_address=agent.email,
            to_name=agent.name,
            subject=compose.tagged_subject(ticket.subject, number=ticket.number, prefix=""),
            text=notification_text(session, ticket, inbox, reason=reason, token=token.token,
                                   undo_seconds=ctx.settings.undo_seconds),
            message_id=message_id,
            # One conversation per agent and ticket in the agent's client (RFC 5322 §3.6.4).
            in_reply_to=earlier[-1] if earlier else None,
            references=tuple(earlier),
            reply_to=compose.reply_address(inbox.address, token.token),
            auto_submitted=True,
            auto_submitted_kind="auto-generated",
        )
        # RFC 3834 §3.3: automatic mail goes out with a null reverse-path, so a bounce starts no loop.
        planned.append(_Planned(key, agent_id, Letter(mail=mail, envelope_from="", recipient=agent.email)))
    return planned


def _facts(session: Session, ticket: Ticket, payload: dict[str, Any]) -> EventFacts:
    kind = str(payload.get("event") or "")
    message = None
    if kind == EventKind.MESSAGE_APPENDED and payload.get("message_id"):
        message = session.get(Message, uuid.UUID(str(payload["message_id"])))
    if kind == EventKind.TICKET_OPENED:
        message = _first_message(session, ticket.id)
    automatic = message is not None and bool(AUTOMATIC_FLAGS & set(message.flags or ()))
    first = message is not None and kind == EventKind.MESSAGE_APPENDED and \
        (_first_message(session, ticket.id) or message).id == message.id
    to = payload.get("to") if kind == EventKind.ASSIGNEE_CHANGED else None
    return EventFacts(
        kind=kind, assignee_id=ticket.assignee_id, actor_agent_id=_actor_agent(session, ticket.id, kind, payload),
        automatic=automatic, first_message=first,
        inbound=message is not None and message.direction is Direction.INBOUND,
        assigned_to=uuid.UUID(str(to)) if to else None,
        draft_ready=kind == EventKind.DRAFT_CHANGED and payload.get("state") == DraftState.PENDING.value,
    )


def _first_message(session: Session, ticket_id: uuid.UUID) -> Message | None:
    return session.execute(select(Message).where(Message.ticket_id == ticket_id)
                           .order_by(Message.created_at, Message.id).limit(1)).scalar_one_or_none()


def _actor_agent(session: Session, ticket_id: uuid.UUID, kind: str, payload: dict[str, Any]) -> uuid.UUID | None:
    """Who caused it, from the timeline row written with the event (events carry no actor)."""
    rows = session.execute(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == kind)
                           .order_by(TicketEvent.id.desc()).limit(20)).scalars()
    for row in rows:
        if kind == EventKind.ASSIGNEE_CHANGED and (row.data or {}).get("to") != payload.get("to"):
            continue
        if kind == EventKind.MESSAGE_APPENDED and (row.data or {}).get("message_id") != payload.get("message_id"):
            continue
        try:
            return uuid.UUID(row.actor_id) if row.actor_id and row.actor_kind.value == "agent" else None
        except ValueError:
            return None
    return None


# ---- a refused mail command, answered to the agent who sent it ----

REFUSAL_EVENT = "agent.mail_refused"
_MAX_REFUSALS = 20


def refusal_payload(*, raw_id: uuid.UUID, agent_id: uuid.UUID, ticket_id: uuid.UUID, refusals: list[str],
                    message_id: str | None, subject: str) -> dict[str, Any]:
    """What inbound/ingest/agent_mail.py enqueues for NOTIFY_JOB when an agent's verified mail asked for
    something that was refused (only then: never for a forged or unverified sender, never for automatic mail)."""
    return {"event": REFUSAL_EVENT, "raw_id": str(raw_id), "agent_id": str(agent_id), "ticket_id": str(ticket_id),
            "refusals": [plain(r, 300) for r in refusals[:_MAX_REFUSALS]], "in_reply_to": message_id,
            "subject": plain(subject, 200)}


def refusal_text(ticket_number: int, refusals: list[str]) -> str:
    lines = [f"Your mail on {compose.ticket_tag(ticket_number)} was received, but not all of it was done:", ""]
    lines += [f"- {plain(r, 300)}" for r in refusals] + ["", "-- ", f"{MAIL_HELP}."]
    return "\n".join(lines) + "\n"


def send_refusal(ctx: JobContext, payload: dict[str, Any]) -> None:
    """One short auto-reply per refused inbound mail (the effects ledger keys it by the raw mail)."""
    key = f"{NOTIFY_JOB}:refusal:{payload['raw_id']}"
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        if effects.begin(session, tenant_id=ctx.tenant_id, key=key, outbox_id=ctx.outbox_id) is not None:
            return  # answered already (or an attempt stopped mid-send): never a second copy
        agent = session.get(Agent, uuid.UUID(str(payload["agent_id"])))
        ticket = session.get(Ticket, uuid.UUID(str(payload["ticket_id"])))
        if agent is None or ticket is None or not agent.email:
            return
        inbox = session.get_one(Inbox, ticket.inbox_id)
        parent = payload.get("in_reply_to")
        subject = str(payload.get("subject") or ticket.subject)
        mail = OutgoingEmail(
            from_address=inbox.address, from_name=f"{inbox.name} (Threadline)", to_address=agent.email,
            to_name=agent.name,
            subject=subject if subject.lower().startswith("re:") else f"Re: {subject}",
            text=refusal_text(ticket.number, list(payload.get("refusals") or [])),
            message_id=f"{uuid.uuid5(_NAMESPACE, key)}@{compose.domain_of(inbox.address)}",
            in_reply_to=parent, references=(parent,) if parent else (),
            auto_submitted=True, auto_submitted_kind="auto-replied",  # RFC 3834 §5: an answer to their mail
        )
        letter = Letter(mail=mail, envelope_from="", recipient=agent.email)
    try:
        send_letter(relay_from_settings(ctx.settings), letter)
    except (PermanentDeliveryError, TemporaryDeliveryError) as exc:
        with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
            effects.forget(session, key=key)
        if isinstance(exc, TemporaryDeliveryError):
            raise
        log.info("refusal mail not sent", extra={"agent_id": payload["agent_id"], "error": str(exc)})
        return
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        effects.complete(session, key=key, result={"email_message_id": mail.message_id})


# ---- the text ----

_HEADLINES = {
    "new-ticket": "New ticket",
    "customer-reply": "The customer wrote again",
    "assigned": "Assigned to you",
    "draft": "A draft answer is ready",
}


def plain(text: str, limit: int = _MAX_QUOTED) -> str:
    """Stored text for a mail body: no control characters (tabs and newlines stay), clipped."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def notification_text(
    session: Session, ticket: Ticket, inbox: Inbox, *, reason: str, token: str, undo_seconds: float
) -> str:
    contact = session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    assignee = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    customer = (f"{compose.clean_text(contact.name)} <{contact.email}>" if contact and contact.name
                else (contact.email if contact else "unknown"))
    lines = [
        f"{_HEADLINES.get(reason, 'Update')}: {compose.ticket_tag(ticket.number)} {compose.clean_text(ticket.subject)}",
        f"Status: {ticket.status.value} · priority: {ticket.priority.value} · "
        f"assignee: {compose.clean_text(assignee.name) if assignee else 'nobody'} · customer: {customer}",
        "",
    ]
    latest = session.execute(
        select(Message).where(Message.ticket_id == ticket.id, Message.direction == Direction.INBOUND)
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1)
    ).scalar_one_or_none()
    if latest is not None:
        unverified = " (sender not verified: DMARC failed)" if "dmarc-fail" in (latest.flags or ()) else ""
        lines += [f"--- {compose.clean_text(latest.author_name) or 'the customer'} wrote{unverified} ---",
                  plain(latest.reply_text or latest.body_text) or "(no text)", ""]
    draft = session.execute(
        select(Draft).where(Draft.ticket_id == ticket.id, Draft.state == DraftState.PENDING)
        .order_by(Draft.created_at.desc()).limit(1)
    ).scalar_one_or_none()
    if draft is not None:
        lines += [f"--- draft answer (confidence {draft.confidence:.0%}; #send-draft sends it as it is) ---",
                  plain(draft.text), ""]
    note_address = compose.reply_address(inbox.address, agent_tokens.NOTE_PREFIX + token)
    lines += [
        "-- ",  # RFC 3676 §4.3 signature separator: clients and our quote stripper drop what follows
        f"{MAIL_HELP}. Internal notes also to {note_address}. "
        f"Replies are sent after {int(undo_seconds)} s, from your own address only.",
    ]
    return "\n".join(lines) + "\n"

