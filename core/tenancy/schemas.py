"""Public shapes of tenancy objects (API bodies and `--json` output): never ORM objects, never secrets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from core.tenancy.imap_models import ImapAfterAction, ImapTls
from core.tenancy.keys import KeyStatusName, key_status
from core.tenancy.models import AgentRole, ApiKey, ApiKeyScope, ReplyMode

_ORM = ConfigDict(from_attributes=True)


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


# --- tenants -------------------------------------------------------------------------------------
class TenantPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime
    disabled_at: datetime | None


class TenantCreate(BaseModel):
    model_config = _examples({"name": "Acme Corp", "slug": "acme"})

    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")


class TenantUpdate(BaseModel):
    model_config = _examples({"disabled": True})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    disabled: bool | None = Field(default=None, description="true stops every key of the tenant at once")


# --- API keys ------------------------------------------------------------------------------------
class ApiKeyPublic(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="public part of the key; names it in lists and the audit log")
    scope: ApiKeyScope
    status: KeyStatusName
    created_at: datetime
    last_used_at: datetime | None = Field(description="to the minute")
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyPublic:
        return cls(id=key.id, name=key.name, prefix=key.prefix, scope=key.scope, status=key_status(key),
                   created_at=key.created_at, last_used_at=key.last_used_at, expires_at=key.expires_at,
                   revoked_at=key.revoked_at)


class ApiKeyCreated(ApiKeyPublic):
    secret: str = Field(description="the key itself: shown this once, store it now")


class ApiKeyCreate(BaseModel):
    model_config = _examples({"name": "reporting", "scope": "read", "expires_at": "2027-01-01T00:00:00Z"})

    name: str = Field(min_length=1, max_length=200)
    scope: Literal["admin", "read"] = "admin"
    expires_at: datetime | None = None


class ApiKeyRotate(BaseModel):
    model_config = _examples({"grace_seconds": 3600})

    grace_seconds: int = Field(default=0, ge=0, le=7 * 86400,
                               description="keep the old key working this long (0 = revoke it now)")
    expires_at: datetime | None = Field(default=None, description="expiry of the new key")


class TenantCreated(BaseModel):
    tenant: TenantPublic
    admin_key: ApiKeyCreated


# --- inboxes -------------------------------------------------------------------------------------
class InboxPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    address: str
    name: str
    reply_mode: ReplyMode
    send_acknowledgement: bool
    acknowledgement_text: str | None
    slack_channel_id: str | None
    slack_user_group_id: str | None = None
    teams_channel_id: str | None
    created_at: datetime


class InboxCreate(BaseModel):
    model_config = _examples({"address": "help@acme.test", "name": "Acme help", "reply_mode": "thread",
                              "send_acknowledgement": True, "slack_channel_id": "C0123456"})

    address: str = Field(max_length=320)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    reply_mode: ReplyMode = ReplyMode.THREAD
    send_acknowledgement: bool = False
    acknowledgement_text: str | None = Field(default=None, min_length=1, max_length=5000)
    slack_channel_id: str | None = Field(default=None, max_length=64)


class InboxUpdate(BaseModel):
    """Only the fields sent change; null clears the optional ones (null slack_channel_id unbinds)."""

    model_config = _examples({"reply_mode": "explicit"}, {"slack_channel_id": "C0123456"},
                             {"send_acknowledgement": True, "acknowledgement_text": "We got your mail."})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    reply_mode: ReplyMode | None = None
    send_acknowledgement: bool | None = None
    acknowledgement_text: str | None = Field(default=None, max_length=5000)
    slack_channel_id: str | None = Field(default=None, max_length=64)
    slack_user_group_id: str | None = Field(default=None, max_length=64,
                                            description="only this Slack user group acts on tickets (null: channel members)")
    teams_channel_id: str | None = Field(default=None, max_length=256)


class ImapAccountSet(BaseModel):
    model_config = _examples({"host": "imap.acme.test", "username": "help@acme.test", "password": "app-password",
                              "tls": "ssl", "folder": "INBOX", "after_action": "move", "move_to": "Done"})

    host: str = Field(min_length=1, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535, description="default 993 for ssl, 143 otherwise")
    tls: ImapTls = ImapTls.SSL
    username: str = Field(min_length=1, max_length=320)
    password: SecretStr | None = Field(default=None, max_length=1000,
                                       description="write-only: stored encrypted, never returned; omit to keep")
    folder: str = Field(default="INBOX", min_length=1, max_length=255)
    after_action: ImapAfterAction = ImapAfterAction.FLAG
    move_to: str | None = Field(default=None, max_length=255)


class ImapAccountPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    host: str
    port: int
    tls: ImapTls
    username: str
    folder: str
    after_action: ImapAfterAction
    move_to: str | None
    enabled: bool
    last_polled_at: datetime | None
    last_error: str | None
    password_set: Literal[True] = True


# --- agents --------------------------------------------------------------------------------------
class AgentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str | None
    role: AgentRole
    active: bool
    slack_user_id: str | None
    teams_user_id: str | None
    created_at: datetime


class AgentCreate(BaseModel):
    model_config = _examples({"email": "ann@acme.test", "name": "Ann", "role": "agent"})

    email: str = Field(max_length=320)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: AgentRole = AgentRole.AGENT


class AgentUpdate(BaseModel):
    model_config = _examples({"role": "read-only"}, {"active": False})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: AgentRole | None = None
    active: bool | None = None


# --- audit ---------------------------------------------------------------------------------------
class AuditEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    actor: str
    action: str
    target: str | None
    data: dict[str, Any]
    client_ip: str | None
    request_id: str | None
