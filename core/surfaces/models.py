"""What we posted on an agent surface, per message: keeps thread posts ordered and idempotent."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantOwned, new_id, str_enum, utcnow_column


class PostKind(StrEnum):
    MESSAGE = "message"  # a customer (or other-channel) message mirrored into the thread
    AGENT = "agent"  # the agent's own surface message that became this Threadline message
    NOTICE = "notice"  # "Email to bob@… in 10 s [Undo]" and its later states


class SurfacePost(TenantOwned, Base):
    __tablename__ = "surface_posts"
    __table_args__ = (
        UniqueConstraint("surface", "channel", "ts"),
        UniqueConstraint("message_id", "surface", "kind"),
        Index("ix_surface_posts_ticket", "ticket_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    ticket_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tickets.id", ondelete="CASCADE"))
    message_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("messages.id", ondelete="CASCADE"))
    surface: Mapped[str] = mapped_column(String(16))
    kind: Mapped[PostKind] = mapped_column(str_enum(PostKind, "post_kind"))
    channel: Mapped[str] = mapped_column(String(256))
    ts: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = utcnow_column()


class SeenEvent(Base):
    """Surface event ids already handled (Slack retries and duplicate deliveries). Not
    tenant-owned: it is checked before we know which tenant an event belongs to."""

    __tablename__ = "seen_events"

    surface: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = utcnow_column()
