"""What the widget API takes and returns (never ORM objects)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inbound.widget.models import WidgetAuthor
from inbound.widget.uploads import MAX_PER_MESSAGE

MAX_TEXT = 5000  # characters: a chat message, not a document (attachments go through uploads)


def _without_nul(value: str | None) -> str | None:
    # Postgres text and jsonb cannot hold U+0000; it is invisible, so it is dropped (as from mail).
    return value.replace("\x00", "") if value is not None else None


class ConversationStart(BaseModel):
    inbox_id: uuid.UUID
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    # Identity verification: the site's user id and HMAC-SHA256(identity_secret, user_id) in hex.
    user_id: str | None = Field(default=None, max_length=200)
    user_hash: str | None = Field(default=None, max_length=128)
    # Or a short-lived HS256 JWT signed with the same secret: {"sub": user id, "exp", optional "email", "name"}.
    user_jwt: str | None = Field(default=None, max_length=4096)

    _no_nul = field_validator("name", "email", "user_id", "user_hash", "user_jwt")(_without_nul)


class ConversationPublic(BaseModel):
    conversation_id: uuid.UUID
    token: str
    expires_at: int  # unix seconds; start again (with the old token) before then to rotate it
    last_seq: int
    title: str
    color: str
    identified: bool


class WidgetMessageCreate(BaseModel):
    client_message_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    text: str = Field(default="", max_length=MAX_TEXT)
    # Refs answered by POST /attachments (signed, bound to this conversation).
    attachments: list[str] = Field(default_factory=list, max_length=MAX_PER_MESSAGE)

    _no_nul = field_validator("text")(_without_nul)

    @model_validator(mode="after")
    def _not_empty(self) -> WidgetMessageCreate:
        if not self.text.strip() and not self.attachments:
            raise ValueError("a message needs text or an attachment")
        return self


class AttachmentPublic(BaseModel):
    filename: str
    content_type: str
    size: int
    # A signed download link (GET, no token header) and when it expires; None for files stored
    # before links existed, and on an upload's answer.
    url: str | None = None
    expires_at: int | None = None


class UploadPublic(AttachmentPublic):
    ref: str  # send it in the next message's `attachments`


class WidgetMessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    author: WidgetAuthor
    author_name: str | None
    body_text: str
    client_message_id: str | None
    attachments: list[AttachmentPublic] = []
    created_at: datetime


class HistoryPage(BaseModel):
    messages: list[WidgetMessagePublic]
    last_seq: int  # the cursor to ask `after=` next time
