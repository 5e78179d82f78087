"""Contacts, tickets, messages, attachments, the ticket timeline, surface anchors, drafts."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantOwned, new_id, str_enum, utcnow_column


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Channel(StrEnum):
    EMAIL = "email"
    WIDGET = "widget"
    SLACK = "slack"
    TEAMS = "teams"
    API = "api"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    NOTE = "note"
    BOT = "bot"


class DeliveryState(StrEnum):
    NOT_APPLICABLE = "n/a"
    PENDING = "pending"
    SENDING = "sending"  # handed to the relay, outcome not recorded yet (core/jobs, issue 10)
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ActorKind(StrEnum):
    AGENT = "agent"
    CONTACT = "contact"
    SYSTEM = "system"
    BOT = "bot"
    API = "api"


class DraftState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    EDITED = "edited"
    DISCARDED = "discarded"
    STALE = "stale"
    NO_ANSWER = "no_answer"  # nothing in the KB above the threshold: a KB gap, no draft shown


class Contact(TenantOwned, Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320))  # normalised: lower-cased, trimmed
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = utcnow_column()


class Ticket(TenantOwned, Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        # Lists in keyset order, unfiltered, by status, by inbox and status (migration 0023 says why).
        Index("ix_tickets_tenant_created", "tenant_id", "created_at", "id",
              postgresql_include=["status", "priority", "inbox_id", "assignee_id", "tags"]),
        Index("ix_tickets_tenant_status_created", "tenant_id", "status", "created_at", "id",
              postgresql_include=["inbox_id", "tags"]),
        Index("ix_tickets_tenant_inbox_status_created", "tenant_id", "inbox_id", "status", "created_at", "id",
              postgresql_include=["tags"]),
        Index("ix_tickets_tags", "tags", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[int] = mapped_column(Integer)
    inbox_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("inboxes.id", ondelete="RESTRICT"), index=True)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("contacts.id"), index=True)
    subject: Mapped[str] = mapped_column(String(998))  # RFC 5322 line limit
    status: Mapped[TicketStatus] = mapped_column(str_enum(TicketStatus, "ticket_status"), default=TicketStatus.NEW)
    priority: Mapped[Priority] = mapped_column(str_enum(Priority, "priority"), default=Priority.NORMAL)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("agents.id"), index=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    # Random secret used in plus-addressed Reply-To (support+<token>@...); never logged.
    reply_token: Mapped[str] = mapped_column(String(64), unique=True)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    linked_ticket_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("tickets.id"))
    created_at: Mapped[datetime] = utcnow_column()
    updated_at: Mapped[datetime] = utcnow_column()
    first_response_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Message(TenantOwned, Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "dedupe_key"),
        Index("ix_messages_ticket_created", "ticket_id", "created_at"),
        Index("ix_messages_tenant_email_message_id", "tenant_id", "email_message_id"),
        # Per-sender rate caps count a contact's recent messages on every inbound mail.
        Index("ix_messages_author_created", "author_contact_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    ticket_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tickets.id", ondelete="CASCADE"))
    direction: Mapped[Direction] = mapped_column(str_enum(Direction, "direction"))
    source: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    author_contact_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("contacts.id"))
    author_agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("agents.id"))
    author_name: Mapped[str | None] = mapped_column(String(200))
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str | None] = mapped_column(Text)  # sanitised before it is stored
    reply_text: Mapped[str | None] = mapped_column(Text)  # quoted history/signature stripped
    email_message_id: Mapped[str | None] = mapped_column(String(998))
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    thread_rule: Mapped[str | None] = mapped_column(String(32))
    thread_reason: Mapped[str | None] = mapped_column(Text)
    delivery_state: Mapped[DeliveryState] = mapped_column(
        str_enum(DeliveryState, "delivery_state"), default=DeliveryState.NOT_APPLICABLE
    )
    delivery_error: Mapped[str | None] = mapped_column(Text)
    # Idempotency of appends: a retried delivery with the same key is the same message.
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    raw_inbound_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("raw_inbound.id"))
    flags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    # SPF/DKIM/DMARC of an inbound mail ({"spf": "pass", "dkim": ..., "dmarc": ..., "source": ...}).
    sender_auth: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = utcnow_column()


class TicketSearch(TenantOwned, Base):
    """A ticket's search document: subject and message texts, stripped, plus the tenant as a lexeme.

    Written only by triggers (migration 0027; core/tickets/search_doc.py bounds it), read only by
    `threadline_search_ticket_ids`. created_at is the ticket's, for the newest-first page."""

    __tablename__ = "ticket_search"
    __table_args__ = (
        Index("ix_ticket_search_doc", "doc", postgresql_using="gin"),
        Index("ix_ticket_search_tenant_created", "tenant_id", "created_at", "ticket_id"),
    )

    # The mixin's own tenant index would duplicate the prefix of ix_ticket_search_tenant_created.
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    ticket_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    doc: Mapped[str] = mapped_column(TSVECTOR)
    indexed_bytes: Mapped[int] = mapped_column(Integer)  # text fed so far; DOC_BYTES + 1 once full


class Attachment(TenantOwned, Base):
    """Metadata of a content-addressed blob (the bytes live in the blob store by sha256)."""

    __tablename__ = "attachments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    message_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_id: Mapped[str | None] = mapped_column(String(500))
    inline: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = utcnow_column()


class TicketEvent(TenantOwned, Base):
    """Append-only timeline; also the audit log of ticket actions (UPDATE/DELETE are refused)."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_id_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    ticket_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[ActorKind] = mapped_column(str_enum(ActorKind, "actor_kind"))
    actor_id: Mapped[str | None] = mapped_column(String(200))
    actor_label: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RawInboundStatus(StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"
    QUARANTINED = "quarantined"
    IGNORED = "ignored"


class RawInbound(TenantOwned, Base):
    """The exact bytes (or payload) of everything that came in, committed before we say yes."""

    __tablename__ = "raw_inbound"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_raw_inbound_status", "status"),
        Index("ix_raw_inbound_held", "tenant_id", "received_at", postgresql_where=text("held")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    inbox_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("inboxes.id"))
    source: Mapped[str] = mapped_column(String(32))  # smtp, imap, eml, widget, api
    idempotency_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column()
    envelope: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[RawInboundStatus] = mapped_column(
        str_enum(RawInboundStatus, "raw_inbound_status"), default=RawInboundStatus.RECEIVED
    )
    error: Mapped[str | None] = mapped_column(Text)
    # What processing decided, in words an operator understands ("duplicate of ...", "auto-reply").
    outcome: Mapped[str | None] = mapped_column(Text)
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    attempts: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = utcnow_column()
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Ignored or quarantined on evidence, kept for agents: listed as held mail, releasable.
    held: Mapped[bool] = mapped_column(default=False)
    # What an operator needs to recognise it without the bytes: {"from": ..., "subject": ...}.
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Set when an agent released it: the pipeline then writes it as a normal mail.
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(200))
    # Where surfaces show it as held mail, e.g. {"slack": {"channel", "ts", "thread_ts", "day"}}.
    surface_refs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class SurfaceAnchor(TenantOwned, Base):
    """Where a ticket lives on an agent surface: Slack channel+thread_ts, Teams conversation."""

    __tablename__ = "surface_anchors"
    __table_args__ = (
        UniqueConstraint("surface", "channel", "thread_ref"),
        UniqueConstraint("ticket_id", "surface"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    ticket_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tickets.id", ondelete="CASCADE"))
    surface: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(256))
    thread_ref: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = utcnow_column()
    # When the card was last re-rendered: update jobs older than this have nothing left to do.
    card_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Teams: the service URL the thread was created through; replies and updates go back there.
    service_url: Mapped[str | None] = mapped_column(String(512))


class Draft(TenantOwned, Base):
    __tablename__ = "drafts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    ticket_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    for_message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("messages.id"))
    text: Mapped[str] = mapped_column(Text)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    confidence: Mapped[float] = mapped_column(Float)
    state: Mapped[DraftState] = mapped_column(str_enum(DraftState, "draft_state"), default=DraftState.PENDING)
    final_text: Mapped[str | None] = mapped_column(Text)
    decided_by_agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("agents.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = utcnow_column()
    # Where each surface shows this draft's card, e.g. {"slack": {"channel": "C1", "ts": "17.1"}}.
    surface_refs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
