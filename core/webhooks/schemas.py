"""Public shapes of webhook subscriptions and deliveries (API bodies); the secret only at creation."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from core.tickets.events import EventKind


class WebhookEvent(StrEnum):
    """The events a subscription may ask for: ticket and message changes (internal ones stay inside)."""

    TICKET_OPENED = EventKind.TICKET_OPENED
    MESSAGE_APPENDED = EventKind.MESSAGE_APPENDED
    STATUS_CHANGED = EventKind.STATUS_CHANGED
    PRIORITY_CHANGED = EventKind.PRIORITY_CHANGED
    ASSIGNEE_CHANGED = EventKind.ASSIGNEE_CHANGED
    DELIVERY_CHANGED = EventKind.DELIVERY_CHANGED


_EXAMPLE_URL = "https://hooks.example.com/threadline"


class WebhookCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"url": _EXAMPLE_URL, "events": ["ticket.opened", "message.appended"], "description": "CRM sync"}]})

    url: str = Field(min_length=1, max_length=2048, description="http(s) URL that receives signed POSTs")
    events: list[WebhookEvent] = Field(min_length=1, max_length=len(WebhookEvent))
    description: str = Field(default="", max_length=200)


class WebhookUpdate(BaseModel):
    """Only the fields sent change; `"active": true` re-enables a disabled subscription."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"active": True}]})

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    events: list[WebhookEvent] | None = Field(default=None, min_length=1, max_length=len(WebhookEvent))
    description: str | None = Field(default=None, max_length=200)
    active: bool | None = None


class WebhookPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: uuid.UUID
    url: str
    description: str
    events: list[str] = Field(validation_alias="event_kinds")
    active: bool
    consecutive_failures: int
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="signing secret: shown in this answer only; verify Threadline-Signature with it")


class WebhookDeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str
    event_kind: str
    attempt: int
    delivered: bool
    status_code: int | None
    duration_ms: int
    error: str | None
    created_at: datetime
