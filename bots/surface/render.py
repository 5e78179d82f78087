"""The view models of one ticket read from the database: what every adapter's jobs render.

The reads and decisions both adapters share (the card, a reply's notice, a thread post, the draft
card, the per-ticket advisory lock, what a thread lacks next), written once for Slack and Teams.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bots.surface import views
from core.attachments.links import download_urls
from core.settings import Settings
from core.surfaces.models import PostKind, SurfacePost
from core.tenancy.models import Agent, Inbox, ReplyMode
from core.tickets.models import Attachment, Channel, Contact, Direction, Draft, Message, Ticket


def now() -> datetime:
    return datetime.now(UTC)


def opened_unverified(session: Session, ticket: Ticket) -> bool:
    """Whether the customer's first message failed DMARC (shown on the card)."""
    flags = session.execute(
        select(Message.flags).where(Message.ticket_id == ticket.id, Message.direction == Direction.INBOUND)
        .order_by(Message.created_at, Message.id).limit(1)
    ).scalar_one_or_none()
    return "dmarc-fail" in (flags or [])


def recipient(session: Session, ticket: Ticket) -> str:
    contact = session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    return contact.email if contact else "the customer"


def anonymous_customer(session: Session, ticket: Ticket) -> str:
    """A ticket with no contact (a web chat visitor who gave no email): the name they gave, if any."""
    name = session.execute(
        select(Message.author_name).where(Message.tenant_id == ticket.tenant_id, Message.ticket_id == ticket.id,
                                          Message.direction == Direction.INBOUND)
        .order_by(Message.created_at, Message.id).limit(1)
    ).scalar_one_or_none()
    fallback = "anonymous web chat visitor" if ticket.channel is Channel.WIDGET else "unknown"
    return f"{name} (no email)" if name and name != "web chat visitor" else fallback


def ticket_card(session: Session, ticket: Ticket) -> views.TicketCard:
    contact = session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    assignee = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    inbox = session.get(Inbox, ticket.inbox_id)
    if contact is not None:
        customer = f"{contact.name} <{contact.email}>" if contact.name else contact.email
    else:
        customer = anonymous_customer(session, ticket)
    return views.ticket_card(
        ticket_id=ticket.id, number=ticket.number, subject=ticket.subject, customer=customer,
        origin=ticket.channel, status=ticket.status, priority=ticket.priority,
        assignee=assignee.name if assignee else None, created_at=ticket.created_at, now=now(),
        explicit_mode=inbox is not None and inbox.reply_mode is ReplyMode.EXPLICIT,
        unverified_sender=opened_unverified(session, ticket),
    )


def reply_notice(session: Session, ticket: Ticket, message: Message, undo_seconds: float) -> views.ReplyNotice:
    left = max(0, int(undo_seconds - (now() - message.created_at).total_seconds()))
    return views.reply_notice(
        message_id=message.id, recipient=recipient(session, ticket), origin=ticket.channel,
        state=message.delivery_state, seconds_left=left, error=message.delivery_error,
    )


def thread_post(session: Session, message: Message, *, settings: Settings | None = None) -> views.ThreadPost:
    """With `settings`, each attachment gets a signed download link served by our API."""
    names = session.execute(select(Attachment.id, Attachment.filename, Attachment.size)
                            .where(Attachment.message_id == message.id)
                            .order_by(Attachment.created_at, Attachment.id)).all()
    links = download_urls(settings, tenant_id=message.tenant_id, attachment_ids=[i for i, _n, _s in names]) \
        if settings is not None else None
    return views.thread_post(message_id=message.id, author=message.author_name or message.direction.value,
                             direction=message.direction, reply_text=message.reply_text,
                             body_text=message.body_text, attachments=[(n, s) for _i, n, s in names],
                             unverified_sender="dmarc-fail" in (message.flags or []), links=links,
                             source=message.source)


def draft_card(session: Session, draft: Draft) -> views.DraftCard:
    """The draft card of a Draft row (who decided it, by name)."""
    agent = session.get(Agent, draft.decided_by_agent_id) if draft.decided_by_agent_id else None
    return views.draft_card(draft_id=draft.id, text=draft.text, citations=list(draft.citations or []),
                            confidence=draft.confidence, state=draft.state.value,
                            decided_by=agent.name if agent else None)


_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


def lock_thread(session: Session, *, surface: str, ticket_id: uuid.UUID) -> None:
    """Serialise one surface's jobs on one ticket's thread until the transaction ends."""
    session.execute(_LOCK, {"key": f"{surface}:{ticket_id}"})


def next_missing(session: Session, *, ticket_id: uuid.UUID, surface: str,
                 own: Channel) -> tuple[PostKind, Message] | None:
    """What a ticket's thread on `surface` lacks next, oldest first: a mirrored message, or the
    notice under an agent's reply written on this surface (their own message is already there)."""
    posts = session.execute(select(SurfacePost.message_id, SurfacePost.kind).where(
        SurfacePost.ticket_id == ticket_id, SurfacePost.surface == surface)).all()
    mirrored = {mid for mid, kind in posts if kind in (PostKind.MESSAGE, PostKind.AGENT)}
    noticed = {mid for mid, kind in posts if kind is PostKind.NOTICE}
    for m in session.execute(select(Message).where(Message.ticket_id == ticket_id)
                             .order_by(Message.created_at, Message.id)).scalars():
        if m.direction is Direction.OUTBOUND and m.source is own:
            if m.id not in noticed:
                return PostKind.NOTICE, m
        elif m.id not in mirrored and not (m.source is own and m.direction is Direction.NOTE):
            return PostKind.MESSAGE, m
    return None
