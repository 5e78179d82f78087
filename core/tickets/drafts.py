"""Draft answers from the knowledge bot: proposed, then sent as-is, edited, discarded or stale.

Knowledge proposes; agents decide on a surface. Sending goes through the same public-reply path
(and undo window) as an agent's own reply. Every state change lands in the ticket timeline.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound
from core.registry import Registry
from core.tickets import replies, service
from core.tickets.events import DomainEvent, EventKind
from core.tickets.models import ActorKind, Channel, Direction, Draft, DraftState, Message, Ticket
from core.tickets.schemas import Actor, Outcome

BOT_ACTOR = Actor(kind=ActorKind.BOT, label="knowledge bot")


def _event(draft: Draft) -> DomainEvent:
    return DomainEvent(EventKind.DRAFT_CHANGED, draft.tenant_id, draft.ticket_id,
                       {"draft_id": str(draft.id), "state": draft.state.value})


def human_replied(*, session: Session, ticket_id: uuid.UUID) -> bool:
    """After a person answered, the bot drafts again only when asked (architecture §6)."""
    return session.execute(
        select(Message.id).where(
            Message.ticket_id == ticket_id, Message.direction == Direction.OUTBOUND,
            Message.author_agent_id.is_not(None),
        ).limit(1)
    ).first() is not None


def supersede_pending(*, session: Session, ticket: Ticket) -> list[DomainEvent]:
    """A newer customer message makes pending drafts stale (their Send is disabled)."""
    stale = list(session.execute(
        select(Draft).where(Draft.tenant_id == ticket.tenant_id, Draft.ticket_id == ticket.id,
                            Draft.state == DraftState.PENDING).with_for_update()
    ).scalars())
    for draft in stale:
        draft.state = DraftState.STALE
        service.record_event(session=session, ticket=ticket, kind="draft.stale", actor=BOT_ACTOR,
                             data={"draft_id": str(draft.id)})
    return [_event(d) for d in stale]


def propose(
    *, session: Session, ticket: Ticket, for_message_id: uuid.UUID | None, text: str,
    citations: list[dict[str, Any]], confidence: float, answered: bool,
) -> Outcome[Draft]:
    """Store the bot's proposal (or, when nothing was confident enough, the KB gap)."""
    events = supersede_pending(session=session, ticket=ticket)
    draft = Draft(
        id=uuid.uuid4(), tenant_id=ticket.tenant_id, ticket_id=ticket.id, for_message_id=for_message_id,
        text=text, citations=citations, confidence=confidence,
        state=DraftState.PENDING if answered else DraftState.NO_ANSWER,
    )
    session.add(draft)
    session.flush()
    service.record_event(session=session, ticket=ticket, kind="draft.proposed" if answered else "draft.no_answer",
                         actor=BOT_ACTOR, data={"draft_id": str(draft.id), "confidence": round(confidence, 3)})
    return Outcome(draft, [*events, _event(draft)])


def _pending(session: Session, draft_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Draft:
    """The draft, row-locked, if it is the tenant's and still pending (`tenant_id` defaults to the
    session's `tenant_scope` tenant: filtered explicitly, RLS being the second wall)."""
    draft = session.execute(
        select(Draft).where(Draft.tenant_id == service.tenant_of(session, tenant_id), Draft.id == draft_id)
        .with_for_update()
    ).scalar_one_or_none()
    if draft is None:
        raise NotFound("no such draft")
    if draft.state is not DraftState.PENDING:
        raise Conflict(f"this draft is {draft.state.value}" + (": regenerate it" if draft.state is DraftState.STALE else ""))
    return draft


def send(
    *, session: Session, registry: Registry, draft_id: uuid.UUID, actor: Actor, agent_id: uuid.UUID | None,
    edited_text: str | None, source: Channel, delay_seconds: float, tenant_id: uuid.UUID | None = None,
) -> Outcome[Draft]:
    """Send the draft (as proposed, or as the agent edited it) through the public-reply path."""
    draft = _pending(session, draft_id, tenant_id)
    ticket = service.get_ticket(session=session, ticket_id=draft.ticket_id, for_update=True, tenant_id=draft.tenant_id)
    final = (edited_text if edited_text is not None else draft.text).strip()
    if not final:
        raise Conflict("the reply is empty")
    out = replies.send_public_reply(session=session, registry=registry, ticket=ticket, text=final, actor=actor,
                                    author_agent_id=agent_id, source=source, delay_seconds=delay_seconds)
    edited = edited_text is not None and edited_text.strip() != draft.text.strip()
    draft.state = DraftState.EDITED if edited else DraftState.SENT
    draft.final_text = final
    draft.decided_by_agent_id = agent_id
    draft.decided_at = datetime.now(timezone.utc)
    service.record_event(session=session, ticket=ticket, kind=f"draft.{draft.state.value}", actor=actor,
                         data={"draft_id": str(draft.id), "message_id": str(out.value.id)})
    return Outcome(draft, [*out.events, _event(draft)])


def discard(*, session: Session, draft_id: uuid.UUID, actor: Actor, agent_id: uuid.UUID | None,
            tenant_id: uuid.UUID | None = None) -> Outcome[Draft]:
    draft = _pending(session, draft_id, tenant_id)
    ticket = service.get_ticket(session=session, ticket_id=draft.ticket_id, tenant_id=draft.tenant_id)
    draft.state = DraftState.DISCARDED
    draft.decided_by_agent_id = agent_id
    draft.decided_at = datetime.now(timezone.utc)
    service.record_event(session=session, ticket=ticket, kind="draft.discarded", actor=actor,
                         data={"draft_id": str(draft.id)})
    return Outcome(draft, [_event(draft)])


def request(*, session: Session, ticket: Ticket, actor: Actor) -> Outcome[Ticket]:
    """An agent asks for a (new) draft: Regenerate, or /threadline draft."""
    service.record_event(session=session, ticket=ticket, kind="draft.requested", actor=actor, data={})
    return Outcome(ticket, [DomainEvent(EventKind.DRAFT_REQUESTED, ticket.tenant_id, ticket.id, {"force": True})])

