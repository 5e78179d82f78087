"""What we posted on an agent surface, per message: keeps thread posts ordered and idempotent.

Also the surface apps installed per workspace (OAuth) and the short-lived OAuth states.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, UniqueConstraint, Uuid
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


class SurfaceInstallation(TenantOwned, Base):
    """A surface app installed into one workspace (Slack team) over OAuth, bound to one tenant.

    The bot token is stored encrypted (core.crypto); `revoked_at` set means it is no longer used.
    """

    __tablename__ = "surface_installations"
    __table_args__ = (
        # NULLS NOT DISTINCT (Postgres 15+): a workspace outside Enterprise Grid has no enterprise id
        # and must still be unique.
        UniqueConstraint("surface", "workspace_id", "enterprise_id", postgresql_nulls_not_distinct=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    surface: Mapped[str] = mapped_column(String(16))
    workspace_id: Mapped[str] = mapped_column(String(64))
    enterprise_id: Mapped[str | None] = mapped_column(String(64))
    bot_token_encrypted: Mapped[str] = mapped_column(Text)
    bot_user_id: Mapped[str] = mapped_column(String(64))
    bot_id: Mapped[str | None] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(Text, default="")
    installer_user_id: Mapped[str | None] = mapped_column(String(64))
    installed_at: Mapped[datetime] = utcnow_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SurfaceOAuthState(Base):
    """One OAuth `state`, bound to the tenant whose install link started the flow; used once.
    Not tenant-owned: the redirect back from the surface is what tells us the tenant."""

    __tablename__ = "surface_oauth_states"

    state: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = utcnow_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TeamsServiceUrl(Base):
    """The Bot Connector service URL (regional) each Azure AD tenant's activities last came from:
    new channel threads of that tenant are created through it (issue 13). Not tenant-owned: an Azure
    AD tenant is known before (and apart from) any Threadline tenant; only allow-listed hosts."""

    __tablename__ = "teams_service_urls"

    aad_tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_url: Mapped[str] = mapped_column(String(512))
    updated_at: Mapped[datetime] = utcnow_column()


class TeamsChannelTenant(Base):
    """Which Azure AD tenant a Teams channel belongs to (from its activities): a new thread in a
    channel goes through that tenant's service URL."""

    __tablename__ = "teams_channel_tenants"

    channel_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    aad_tenant_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = utcnow_column()
