"""Typed inputs and outputs of the ticket service (no ORM objects cross the API)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from core.tickets.events import DomainEvent
from core.tickets.models import ActorKind, Channel, DeliveryState, Direction, Priority, TicketStatus

T = TypeVar("T")


@dataclass(frozen=True)
class Actor:
    """Who did something; recorded on every timeline event."""

    kind: ActorKind
    id: str | None = None
    label: str | None = None


SYSTEM_ACTOR = Actor(ActorKind.SYSTEM, None, "threadline")


@dataclass(frozen=True)
class NewMessage:
    direction: Direction
    source: Channel
    body_text: str
    body_html: str | None = None
    reply_text: str | None = None
    author_contact_id: uuid.UUID | None = None
    author_agent_id: uuid.UUID | None = None
    author_name: str | None = None
    email_message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    thread_rule: str | None = None
    thread_reason: str | None = None
    dedupe_key: str | None = None
    raw_inbound_id: uuid.UUID | None = None
    delivery_state: DeliveryState = DeliveryState.NOT_APPLICABLE
    flags: tuple[str, ...] = ()
    sender_auth: dict[str, str | None] | None = None  # SPF/DKIM/DMARC of an inbound mail


@dataclass
class Outcome(Generic[T]):
    """A service's result plus the events the edge must record in the same transaction."""

    value: T
    events: list[DomainEvent] = field(default_factory=list)
    first_message: Any = None  # open_ticket: the Message created with the ticket, if any


class AttachmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    inline: bool


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    direction: Direction
    source: Channel
    author_name: str | None
    author_agent_id: uuid.UUID | None = None
    raw_inbound_id: uuid.UUID | None = None  # the stored mail: GET .../messages/{id}/raw
    sender_auth: dict[str, Any] | None = None  # SPF/DKIM/DMARC of an inbound mail
    attachments: list[AttachmentPublic] = []
    body_text: str
    reply_text: str | None
    email_message_id: str | None
    thread_rule: str | None
    thread_reason: str | None
    delivery_state: DeliveryState
    delivery_error: str | None
    flags: list[str]
    created_at: datetime


class TicketPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: int
    subject: str
    status: TicketStatus
    priority: Priority
    channel: Channel
    inbox_id: uuid.UUID
    contact_id: uuid.UUID | None
    assignee_id: uuid.UUID | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    linked_ticket_id: uuid.UUID | None = None  # merged into, or split from


class TicketEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    actor_kind: ActorKind
    actor_id: str | None
    actor_label: str | None
    data: dict[str, object]
    created_at: datetime


class TicketDetail(TicketPublic):
    contact_email: str | None = None
    messages: list[MessagePublic] = []
    timeline: list[TicketEventPublic] = []
