"""Widget conversations and their transcript (what the visitor sees, in order).

A conversation is one visitor's chat with one inbox and maps to one ticket. The transcript row
(`WidgetMessage`) is written before the 2xx for a visitor message and by `widget.deliver` for an
agent reply; `seq` is allocated under the conversation's row lock, so it grows in commit order
and "everything after seq N" never skips a row that commits late.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantOwned, new_id, str_enum, utcnow_column


class WidgetAuthor(StrEnum):
    VISITOR = "visitor"
    AGENT = "agent"


class WidgetConversation(TenantOwned, Base):
    __tablename__ = "widget_conversations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    inbox_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("inboxes.id", ondelete="CASCADE"), index=True)
    # Set by the ingest write step with the first message; replaced when a long-closed ticket is not reopened.
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("tickets.id", ondelete="SET NULL"),
                                                       index=True)
    # Bumped to revoke every token issued so far (tokens carry the version they were signed with).
    token_version: Mapped[int] = mapped_column(Integer, default=1)
    # The site's own user id, only when its HMAC checked out (identity verification).
    external_id: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    origin: Mapped[str | None] = mapped_column(String(300))  # the host page's origin at start
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = utcnow_column()
    last_seen_at: Mapped[datetime] = utcnow_column()


class WidgetMessage(TenantOwned, Base):
    __tablename__ = "widget_messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        # The idempotency of visitor POSTs: a retry with the same client id is the same message.
        UniqueConstraint("conversation_id", "client_message_id"),
        UniqueConstraint("message_id"),
        Index("ix_widget_messages_raw_inbound_id", "raw_inbound_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("widget_conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    author: Mapped[WidgetAuthor] = mapped_column(str_enum(WidgetAuthor, "widget_author"))
    author_name: Mapped[str | None] = mapped_column(String(200))
    body_text: Mapped[str] = mapped_column(Text)
    client_message_id: Mapped[str | None] = mapped_column(String(64))
    raw_inbound_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("raw_inbound.id"))
    # The ticket message: set by ingest for a visitor message, at once for an agent reply.
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("messages.id", ondelete="SET NULL"))
    # What the visitor sees of their files ({"filename", "content_type", "size", "sha256"}, the blob for the
    # download link); `attachments` rows are the truth.
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    created_at: Mapped[datetime] = utcnow_column()
