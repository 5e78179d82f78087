"""The ingest steps for a web chat message: the same named steps as mail, minus MIME.

load → dedupe → caps → thread (conversation → ticket) → write, in the caller's transaction
(`pipeline.process_raw` owns it, so failures are kept for replay exactly as for mail).
A widget message has no headers to read: threading is by conversation, and the only loop
protection needed is the rate cap (the API also limits per token, IP and inbox).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.jobs.outbox import record_events
from core.settings import Settings
from core.tickets import drafts, held, service
from core.tickets.events import DomainEvent
from core.tickets.models import (
    ActorKind,
    Attachment,
    Channel,
    Direction,
    Message,
    RawInbound,
    RawInboundStatus,
    Ticket,
    TicketStatus,
)
from core.tickets.schemas import Actor, NewMessage
from inbound.ingest.context import Disposition
from inbound.ingest.pipeline import IngestDeps, ProcessResult
from inbound.ingest.steps import RATE_WINDOW
from inbound.widget.models import WidgetConversation, WidgetMessage

SOURCE = "widget"
THREAD_RULE = "widget-conversation"


@dataclass(frozen=True)
class WidgetFile:
    """An uploaded file the message refers to: its bytes are already in the blob store by sha256."""

    sha256: str
    size: int
    content_type: str  # sniffed from the bytes at upload, never the browser's claim
    filename: str


@dataclass(frozen=True)
class WidgetPayload:
    """What the API stored raw (JSON): the visitor's words, files, and who they said they are."""

    conversation_id: uuid.UUID
    client_message_id: str
    text: str
    name: str | None = None
    email: str | None = None
    files: tuple[WidgetFile, ...] = ()

    def to_bytes(self) -> bytes:
        return json.dumps({"conversation_id": str(self.conversation_id), "client_message_id": self.client_message_id,
                           "text": self.text, "name": self.name, "email": self.email,
                           "files": [asdict(f) for f in self.files]}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> WidgetPayload:
        obj = json.loads(data)
        files = tuple(WidgetFile(str(f["sha256"]), int(f["size"]), str(f["content_type"]), str(f["filename"]))
                      for f in obj.get("files") or ())
        return cls(uuid.UUID(obj["conversation_id"]), str(obj["client_message_id"]), str(obj["text"]),
                   obj.get("name"), obj.get("email"), files)


@dataclass
class WidgetIngest:
    raw_id: uuid.UUID
    tenant_id: uuid.UUID
    inbox_id: uuid.UUID
    payload_bytes: bytes
    payload: WidgetPayload | None = None
    conversation: WidgetConversation | None = None
    dedupe_key: str | None = None
    ticket: Ticket | None = None  # the ticket to append to; None = open a new one
    thread_reason: str = ""
    linked_ticket_id: uuid.UUID | None = None
    disposition: Disposition = Disposition.WRITE
    outcome: str = ""
    flags: list[str] = field(default_factory=list)


WidgetStep = Callable[[WidgetIngest, Session, Settings], None]


def load(ctx: WidgetIngest, session: Session, settings: Settings) -> None:
    ctx.payload = WidgetPayload.from_bytes(ctx.payload_bytes)
    # Locked: the write below sets ticket_id, and two first messages must not open two tickets.
    ctx.conversation = session.execute(
        select(WidgetConversation).where(WidgetConversation.id == ctx.payload.conversation_id).with_for_update()
    ).scalar_one()


def dedupe(ctx: WidgetIngest, session: Session, settings: Settings) -> None:
    """The same conversation + client message id is the same message (a replayed raw record)."""
    assert ctx.payload is not None
    basis = f"widget\x00{ctx.payload.conversation_id}\x00{ctx.payload.client_message_id}"
    ctx.dedupe_key = hashlib.sha256(basis.encode()).hexdigest()
    same = session.execute(
        select(Message.id, Ticket.number).join(Ticket, Ticket.id == Message.ticket_id)
        .where(Message.dedupe_key == ctx.dedupe_key)
    ).first()
    if same is not None:
        ctx.disposition = Disposition.DUPLICATE
        ctx.outcome = f"duplicate of message {same[0]} on ticket #{same[1]}"


def conversation_cap(ctx: WidgetIngest, session: Session, settings: Settings) -> None:
    """More messages in 10 minutes than a person types (a script): quarantined, visible, releasable."""
    assert ctx.conversation is not None
    since = datetime.now(UTC) - RATE_WINDOW
    recent = session.execute(
        select(func.count()).select_from(WidgetMessage).where(
            WidgetMessage.conversation_id == ctx.conversation.id, WidgetMessage.client_message_id.is_not(None),
            WidgetMessage.created_at >= since,
        )
    ).scalar_one()
    if recent > settings.ticket_cap:
        ctx.disposition = Disposition.QUARANTINE
        ctx.outcome = f"quarantined: {recent} web chat messages in 10 minutes (cap {settings.ticket_cap})"


def thread(ctx: WidgetIngest, session: Session, settings: Settings) -> None:
    """One conversation is one ticket; a ticket closed longer than the reopen window is not woken."""
    assert ctx.conversation is not None
    ticket = (
        service.get_ticket(session=session, ticket_id=ctx.conversation.ticket_id, for_update=True)
        if ctx.conversation.ticket_id else None
    )
    if ticket is None:
        ctx.thread_reason = "first message of web chat conversation: new ticket"
        return
    if ticket.status is TicketStatus.CLOSED and ticket.closed_at is not None:
        age = datetime.now(UTC) - ticket.closed_at
        if age > timedelta(days=settings.reopen_days):
            ctx.linked_ticket_id = ticket.id
            ctx.thread_reason = (f"web chat conversation of ticket #{ticket.number}, closed {age.days} days ago "
                                 f"(over {settings.reopen_days}): new ticket linked to it")
            return
    ctx.ticket = ticket
    ctx.thread_reason = f"web chat conversation of ticket #{ticket.number}"


STEPS: tuple[tuple[str, WidgetStep], ...] = (
    ("load", load),
    ("dedupe", dedupe),
    ("conversation_cap", conversation_cap),
    ("thread", thread),
)


def run_widget(deps: IngestDeps, session: Session, raw: RawInbound) -> ProcessResult:
    if raw.inbox_id is None:
        raise LookupError("the raw record has no inbox")
    ctx = WidgetIngest(raw.id, raw.tenant_id, raw.inbox_id, raw.payload)
    raw.attempts += 1
    for _name, step in STEPS:
        step(ctx, session, deps.settings)
        if raw.released_at is not None and ctx.disposition is Disposition.QUARANTINE:
            ctx.disposition = Disposition.WRITE  # an agent released it
            ctx.flags.append("released")
        if ctx.disposition is not Disposition.WRITE:
            break
    assert ctx.payload is not None
    raw.summary = {"from": ctx.payload.email or ctx.payload.name or "web chat visitor",
                   "subject": f"web chat: {ctx.payload.text[:200]}"}
    if ctx.disposition is Disposition.DUPLICATE:
        return _finish(raw, RawInboundStatus.IGNORED, ctx.outcome)
    if ctx.disposition is not Disposition.WRITE:
        result = _finish(raw, RawInboundStatus.QUARANTINED, ctx.outcome)
        raw.held = True
        record_events(session=session, registry=deps.registry, events=[held.held_event(raw)])
        return result
    return _write(deps, session, raw, ctx)


def _subject(payload: WidgetPayload) -> str:
    first = next((line.strip() for line in payload.text.splitlines() if line.strip()), "")
    if not first and payload.files:
        first = payload.files[0].filename
    return f"Web chat: {first[:80]}" if first else "Web chat"


def _store_files(session: Session, tenant_id: uuid.UUID, message: Message, files: tuple[WidgetFile, ...]) -> None:
    """The same `attachments` rows as mail, so the Slack thread post lists them the same way."""
    for f in files:
        session.add(Attachment(tenant_id=tenant_id, message_id=message.id, filename=f.filename[:500],
                               content_type=f.content_type[:200], size=f.size, sha256=f.sha256))


def _write(deps: IngestDeps, session: Session, raw: RawInbound, ctx: WidgetIngest) -> ProcessResult:
    payload, conversation = ctx.payload, ctx.conversation
    assert payload is not None and conversation is not None
    contact = (
        service.find_or_create_contact(session=session, tenant_id=ctx.tenant_id, email=payload.email, name=payload.name)
        if payload.email else None
    )
    label = payload.name or payload.email or "web chat visitor"
    actor = Actor(ActorKind.CONTACT, str(contact.id) if contact else None, label)
    new = NewMessage(
        direction=Direction.INBOUND, source=Channel.WIDGET, body_text=payload.text, reply_text=payload.text,
        author_contact_id=contact.id if contact else None, author_name=label, thread_rule=THREAD_RULE,
        thread_reason=ctx.thread_reason, dedupe_key=ctx.dedupe_key, raw_inbound_id=raw.id, flags=tuple(ctx.flags),
    )
    events: list[DomainEvent]
    if ctx.ticket is None:
        opened = service.open_ticket(
            session=session, tenant_id=ctx.tenant_id, inbox_id=ctx.inbox_id, subject=_subject(payload),
            channel=Channel.WIDGET, contact_id=contact.id if contact else None, actor=actor, first_message=new,
            linked_ticket_id=ctx.linked_ticket_id,
        )
        ticket, events, message = opened.value, opened.events, opened.first_message
        conversation.ticket_id = ticket.id
    else:
        ticket = ctx.ticket
        appended = service.append_message(session=session, ticket=ticket, message=new, actor=actor)
        events, message = appended.events, appended.value
        events += drafts.supersede_pending(session=session, ticket=ticket)
    assert isinstance(message, Message)
    session.flush()
    _store_files(session, ctx.tenant_id, message, payload.files)
    transcript = session.execute(
        select(WidgetMessage).where(WidgetMessage.conversation_id == conversation.id,
                                    WidgetMessage.client_message_id == payload.client_message_id)
    ).scalar_one_or_none()
    if transcript is not None:
        transcript.message_id = message.id
    record_events(session=session, registry=deps.registry, events=events)
    verb = "opened" if ctx.ticket is None else "added to"
    result = _finish(raw, RawInboundStatus.PROCESSED, f"{verb} ticket #{ticket.number} ({THREAD_RULE})")
    raw.ticket_id, raw.message_id = ticket.id, message.id
    return ProcessResult(raw.id, result.status, result.outcome, ticket.id, ticket.number, message.id, THREAD_RULE)


def _finish(raw: RawInbound, status: RawInboundStatus, outcome: str) -> ProcessResult:
    raw.status, raw.outcome, raw.error = status, outcome, None
    raw.processed_at = datetime.now(UTC)
    return ProcessResult(raw.id, status, outcome)
