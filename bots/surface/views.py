"""What an agent surface shows, decided once for Slack and Teams (pure; no I/O)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from core.tickets.models import Channel, DeliveryState, Direction, Priority, TicketStatus

MAX_THREAD_TEXT = 2800  # Slack section text caps at 3000 characters; leave room for markup
MAX_SHOWN_ERROR = 500  # a remote mail server may answer with 100 KB; the whole error is in the timeline
MAX_FILE_NAME = 120  # as listed under a message; the stored file keeps its whole name
MAX_AUTHOR = 120  # a name in a byline, so "… replied by email" always shows
ELLIPSIS = "…"


class CardAction(StrEnum):
    """The buttons a ticket card offers; adapters map them to their own ids."""

    ASSIGN_ME = "assign_me"
    PRIORITY = "priority"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    REPLY = "reply_to_customer"


@dataclass(frozen=True)
class TicketCard:
    ticket_id: uuid.UUID
    number: int
    subject: str
    customer: str
    origin: Channel
    status: TicketStatus
    priority: Priority
    assignee: str | None
    age: str
    actions: tuple[CardAction, ...]
    # The customer's opening mail failed DMARC: the From address may be forged.
    unverified_sender: bool = False

    @property
    def via(self) -> str:
        """How the customer reached us, in agents' words ("web chat", not the enum value)."""
        return "web chat" if self.origin is Channel.WIDGET else self.origin.value


@dataclass(frozen=True)
class ThreadPost:
    """One message mirrored into the ticket's thread."""

    message_id: uuid.UUID
    author: str
    direction: Direction
    text: str
    truncated: bool  # the full original is one click away
    attachments: tuple[str, ...]  # "name (size)"
    unverified_sender: bool = False  # this mail failed DMARC
    links: tuple[str, ...] = ()  # a signed download link per attachment, same order (core/attachments/links.py)
    source: Channel | None = None  # where the message was written (an agent's reply by email, a widget message)

    @property
    def byline(self) -> str:
        """Who wrote it, and how when it is not plain from the thread: "Ann replied by email"."""
        if self.source is Channel.EMAIL and self.direction is Direction.OUTBOUND:
            return f"{clip(self.author, MAX_AUTHOR)} replied by email"
        if self.source is Channel.EMAIL and self.direction is Direction.NOTE:
            return f"{clip(self.author, MAX_AUTHOR)} added a note by email"
        return self.author


@dataclass(frozen=True)
class ReplyNotice:
    """The state of an agent's public reply, shown under their message."""

    message_id: uuid.UUID
    recipient: str
    state: DeliveryState
    seconds_left: int
    error: str | None
    headline: str
    can_undo: bool


def clip(text: str, limit: int) -> str:
    """At most `limit` characters; a cut ends with `…` so the reader knows there is more."""
    return text if len(text) <= limit else text[: max(limit - len(ELLIPSIS), 0)] + ELLIPSIS


def shown_error(error: str | None) -> str:
    """A delivery error as a surface shows it: its head, and where to find the rest when it was cut."""
    text = (error or "").strip() or "unknown error"
    if len(text) <= MAX_SHOWN_ERROR:
        return text
    return clip(text, MAX_SHOWN_ERROR) + " (cut; the whole error is in the ticket's timeline)"


def delivery_failure(error: str | None) -> str:
    """The line posted in the ticket's thread when an agent's reply could not be delivered."""
    return f"The reply was not delivered: {shown_error(error)}"


def humanize_age(created: datetime, now: datetime) -> str:
    seconds = max(0, int((now - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "just now"


def humanize_size(size: int) -> str:
    for unit, step in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= step:
            return f"{size / step:.1f} {unit}"
    return f"{size} B"


def ticket_card(
    *, ticket_id: uuid.UUID, number: int, subject: str, customer: str, origin: Channel, status: TicketStatus,
    priority: Priority, assignee: str | None, created_at: datetime, now: datetime, explicit_mode: bool,
    unverified_sender: bool = False,
) -> TicketCard:
    closed = status in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
    actions: list[CardAction] = [] if assignee else [CardAction.ASSIGN_ME]
    actions.append(CardAction.PRIORITY)
    actions.append(CardAction.REOPEN if closed else CardAction.RESOLVE)
    if explicit_mode and not closed:
        actions.append(CardAction.REPLY)
    return TicketCard(
        ticket_id, number, subject or "(no subject)", customer, origin, status, priority, assignee,
        humanize_age(created_at, now), tuple(actions), unverified_sender,
    )


def thread_post(
    *, message_id: uuid.UUID, author: str, direction: Direction, reply_text: str | None, body_text: str,
    attachments: list[tuple[str, int]], unverified_sender: bool = False, links: list[str] | None = None,
    source: Channel | None = None,
) -> ThreadPost:
    text = (reply_text or body_text or "").strip() or "(no text)"
    truncated = len(text) > MAX_THREAD_TEXT or (reply_text is not None and reply_text.strip() != body_text.strip())
    return ThreadPost(
        message_id, author, direction, clip(text, MAX_THREAD_TEXT), truncated,
        tuple(f"{clip(name, MAX_FILE_NAME)} ({humanize_size(size)})" for name, size in attachments),
        unverified_sender, tuple(links) if links and len(links) == len(attachments) else (), source,
    )


def reply_notice(
    *, message_id: uuid.UUID, recipient: str, origin: Channel, state: DeliveryState, seconds_left: int,
    error: str | None,
) -> ReplyNotice:
    how = "Message in the chat widget to" if origin is Channel.WIDGET else "Email to"
    headline = {
        DeliveryState.PENDING: (f"{how} {recipient} in {seconds_left} s" if seconds_left > 0
                                else f"{how} {recipient}: sending"),
        DeliveryState.SENT: f"{how} {recipient}: sent",
        DeliveryState.FAILED: f"{how} {recipient}: failed: {shown_error(error)}",
        DeliveryState.CANCELLED: "Not sent (undone)",
    }.get(state, state.value)
    return ReplyNotice(message_id, recipient, state, seconds_left, error, headline, state is DeliveryState.PENDING)


@dataclass(frozen=True)
class DraftSource:
    title: str
    where: str  # a link, or the document's path in the knowledge base


@dataclass(frozen=True)
class DraftCard:
    """The bot's proposed answer with what it is based on, and what an agent may do with it."""

    draft_id: uuid.UUID
    text: str
    sources: tuple[DraftSource, ...]
    confidence_pct: int
    state: str  # DraftState value
    headline: str
    can_send: bool
    can_regenerate: bool
    unverified: bool  # written by a small local model: it may invent things
    truncated: bool = False  # `text` is shortened for display; Send still sends the whole answer


def draft_card(
    *, draft_id: uuid.UUID, text: str, citations: list[dict[str, object]], confidence: float, state: str,
    decided_by: str | None,
) -> DraftCard:
    sources = tuple(
        DraftSource(str(c.get("title") or c.get("source") or "source"), str(c.get("url") or c.get("source") or ""))
        for c in citations
    )
    unverified = any(bool(c.get("unverified")) for c in citations)
    headline = {
        "pending": "Suggested answer" + (" (unverified: written by a local model)" if unverified else ""),
        "sent": f"Sent by {decided_by or 'an agent'}",
        "edited": f"Edited and sent by {decided_by or 'an agent'}",
        "discarded": f"Discarded by {decided_by or 'an agent'}",
        "stale": "Out of date: the customer wrote again",
        "no_answer": "No confident answer in the knowledge base",
    }.get(state, state)
    return DraftCard(draft_id, clip(text, MAX_THREAD_TEXT), sources, round(confidence * 100), state, headline,
                     can_send=state == "pending", can_regenerate=state in ("stale", "no_answer", "discarded"),
                     unverified=unverified, truncated=len(text) > MAX_THREAD_TEXT)
