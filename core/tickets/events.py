"""Domain events returned by services; the edge turns them into outbox rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DomainEvent:
    """Something that happened to a ticket that other parts may react to after commit."""

    kind: str
    tenant_id: uuid.UUID
    ticket_id: uuid.UUID | None  # None for events about no ticket (held mail)
    data: dict[str, Any] = field(default_factory=dict)


class EventKind:
    TICKET_OPENED = "ticket.opened"
    MESSAGE_APPENDED = "message.appended"
    STATUS_CHANGED = "ticket.status_changed"
    PRIORITY_CHANGED = "ticket.priority_changed"
    ASSIGNEE_CHANGED = "ticket.assignee_changed"
    TAGS_CHANGED = "ticket.tags_changed"
    MERGED = "ticket.merged"  # data: {"from_number", "into_number"}; emitted for both tickets
    SPLIT = "ticket.split"  # data: {"from_number", "new_number", "message_id"}; for both tickets
    DELIVERY_CHANGED = "message.delivery_changed"  # a public reply was sent, failed or cancelled
    DRAFT_CHANGED = "draft.changed"  # a draft was proposed, sent, edited, discarded or went stale
    DRAFT_REQUESTED = "draft.requested"  # an agent asked for a (new) draft
    MAIL_HELD = "mail.held"  # an inbound mail was ignored or quarantined: agents can release it
    MAIL_RELEASED = "mail.released"  # an agent released held mail
