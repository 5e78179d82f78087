"""Tenants, inboxes, agents, API keys, idempotency records and the admin audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantOwned, new_id, str_enum, utcnow_column


class ReplyMode(StrEnum):
    THREAD = "thread"  # an agent's plain thread reply goes to the customer (after undo)
    EXPLICIT = "explicit"  # thread text is internal; only "Reply to customer" sends


class AgentRole(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    READ_ONLY = "read-only"  # sees tickets, cannot reply, assign or change them


class ApiKeyScope(StrEnum):
    ADMIN = "admin"  # everything in its tenant
    READ = "read"  # GET only
    PLATFORM = "platform"  # no tenant: manages tenants (create, disable, replace a lost admin key)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = utcnow_column()
    # A disabled tenant's API keys stop working; its data stay (re-enable undoes it).
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Inbox(TenantOwned, Base):
    __tablename__ = "inboxes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    # Globally unique: SMTP RCPT resolves an address to exactly one tenant's inbox.
    address: Mapped[str] = mapped_column(String(320), unique=True)
    reply_mode: Mapped[ReplyMode] = mapped_column(str_enum(ReplyMode, "reply_mode"), default=ReplyMode.THREAD)
    slack_channel_id: Mapped[str | None] = mapped_column(String(64))
    # When set, only members of this Slack user group (S…) act on the inbox's tickets; else the
    # members of its bound channel do (bots/surface/access.py).
    slack_user_group_id: Mapped[str | None] = mapped_column(String(64))
    teams_channel_id: Mapped[str | None] = mapped_column(String(256))
    # When set, only members of this Teams team (its id, 19:…@thread.tacv2) act on the inbox's
    # tickets, as the Bot Connector's team roster says; else the bound channel's team does.
    teams_team_id: Mapped[str | None] = mapped_column(String(256))
    send_acknowledgement: Mapped[bool] = mapped_column(Boolean, default=False)
    # None = the built-in acknowledgement text.
    acknowledgement_text: Mapped[str | None] = mapped_column(Text)
    widget_config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    sla_policy: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = utcnow_column()


class Agent(TenantOwned, Base):
    __tablename__ = "agents"
    __table_args__ = (
        UniqueConstraint("tenant_id", "email"),
        UniqueConstraint("tenant_id", "slack_user_id"),
        UniqueConstraint("tenant_id", "teams_user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[AgentRole] = mapped_column(str_enum(AgentRole, "agent_role"), default=AgentRole.AGENT)
    slack_user_id: Mapped[str | None] = mapped_column(String(64))
    teams_user_id: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = utcnow_column()
    # Which notification mails the agent wants (core/tickets/agent_tokens.py `NotifyPrefs`); {} = defaults.
    notify_prefs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")


class AgentTicketToken(TenantOwned, Base):
    """The secret in an agent's reply address for one ticket (`support+<token>@…`, issue 16).

    Separate from the ticket's customer reply token: a mail to it is an agent action, accepted only
    from that agent's own, DMARC-verified address. Deactivating the agent revokes every token.
    """

    __tablename__ = "agent_ticket_tokens"
    __table_args__ = (UniqueConstraint("agent_id", "ticket_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    agent_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("agents.id", ondelete="CASCADE"))
    ticket_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # never logged
    created_at: Mapped[datetime] = utcnow_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AgentNotification(TenantOwned, Base):
    """One notification mail to an agent: its Message-ID lets a reply thread by headers too."""

    __tablename__ = "agent_notifications"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    token_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("agent_ticket_tokens.id", ondelete="CASCADE"), index=True
    )
    email_message_id: Mapped[str] = mapped_column(String(998), unique=True)
    reason: Mapped[str] = mapped_column(String(32))  # new-ticket, assigned, customer-reply, draft
    created_at: Mapped[datetime] = utcnow_column()


class ApiKey(Base):
    """An admin API key: only its SHA-256 is stored; the prefix finds the row.

    Not the TenantOwned mixin: a platform key has no tenant (tenant_id NULL, visible only to
    system scope); every other key belongs to exactly one tenant and RLS walls it in.
    """

    __tablename__ = "api_keys"
    __tenant_owned__ = True
    __table_args__ = (
        CheckConstraint("(scope = 'platform') = (tenant_id IS NULL)", name="platform_keys_have_no_tenant"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scope: Mapped[ApiKeyScope] = mapped_column(str_enum(ApiKeyScope, "api_key_scope"), default=ApiKeyScope.ADMIN)
    created_at: Mapped[datetime] = utcnow_column()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyRecord(Base):
    """The first response to a POST with an Idempotency-Key, replayed for the same key and body.

    Keyed per API key; tenant_id (NULL for platform keys) lets RLS wall the rows like any other.
    status_code NULL = the first request is still in flight.
    """

    __tablename__ = "idempotency_keys"
    __tenant_owned__ = True
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    api_key_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_headers: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = utcnow_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditEntry(TenantOwned, Base):
    """Admin actions that are not ticket changes (those live in the ticket timeline)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    client_ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))


class TicketCounter(Base):
    """Per-tenant ticket number allocator; the row lock serialises concurrent creators."""

    __tablename__ = "ticket_counters"
    __tenant_owned__ = True

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    last_number: Mapped[int] = mapped_column(default=0)
