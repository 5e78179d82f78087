"""Tenants, inboxes, agents, API keys, bootstrap. Cross-tenant lookups run in system scope."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidInput, NotFound
from core.tenancy.models import Agent, AgentRole, ApiKey, AuditEntry, Inbox, ReplyMode, Tenant

API_KEY_PREFIX = "tl_"
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def is_email_address(value: str) -> bool:
    return bool(_ADDRESS.match(value.strip())) and "\r" not in value and "\n" not in value


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:64] or "tenant"


def create_tenant(*, session: Session, name: str, slug: str | None = None) -> Tenant:
    tenant = Tenant(id=uuid.uuid4(), name=name, slug=slug or _slugify(name))
    if session.execute(select(Tenant).where(Tenant.slug == tenant.slug)).scalar_one_or_none():
        raise Conflict(f"a tenant with slug {tenant.slug!r} exists")
    session.add(tenant)
    session.flush()
    return tenant


def create_inbox(
    *,
    session: Session,
    tenant_id: uuid.UUID,
    address: str,
    name: str | None = None,
    slack_channel_id: str | None = None,
    reply_mode: ReplyMode = ReplyMode.THREAD,
) -> Inbox:
    address = address.strip().lower()
    if not is_email_address(address):
        raise InvalidInput(f"{address!r} is not an email address")
    inbox = Inbox(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        name=name or address,
        address=address,
        slack_channel_id=slack_channel_id,
        reply_mode=reply_mode,
        widget_config={},
        sla_policy={},
    )
    session.add(inbox)
    session.flush()
    return inbox


def inbox_for_address(*, session: Session, address: str) -> Inbox | None:
    """System scope: which tenant's inbox owns this address (SMTP RCPT, IMAP)."""
    return session.execute(select(Inbox).where(Inbox.address == address.strip().lower())).scalar_one_or_none()


def create_agent(
    *,
    session: Session,
    tenant_id: uuid.UUID,
    name: str,
    email: str | None = None,
    role: AgentRole = AgentRole.AGENT,
    slack_user_id: str | None = None,
) -> Agent:
    agent = Agent(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        name=name,
        email=email.strip().lower() if email else None,
        role=role,
        slack_user_id=slack_user_id,
    )
    session.add(agent)
    session.flush()
    return agent


def find_or_create_agent_by_slack_id(
    *, session: Session, tenant_id: uuid.UUID, slack_user_id: str, name: str, email: str | None
) -> Agent:
    session.execute(
        insert(Agent)
        .values(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            name=name,
            email=email.strip().lower() if email else None,
            role=AgentRole.AGENT.value,
            slack_user_id=slack_user_id,
            active=True,
        )
        .on_conflict_do_nothing()
    )
    agent = session.execute(
        select(Agent).where(Agent.tenant_id == tenant_id, Agent.slack_user_id == slack_user_id)
    ).scalar_one_or_none()
    if agent is None:  # the email already belongs to an agent without a Slack id: link them
        agent = session.execute(
            select(Agent).where(Agent.tenant_id == tenant_id, Agent.email == (email or "").lower())
        ).scalar_one()
        agent.slack_user_id = slack_user_id
    return agent


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once, never stored


def _hash_key(secret: str) -> str:
    # Keys are 256-bit random: a fast hash is enough (no password stretching needed).
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_api_key(*, session: Session, tenant_id: uuid.UUID, name: str) -> IssuedKey:
    prefix = secrets.token_hex(6)
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(id=uuid.uuid4(), tenant_id=tenant_id, name=name, prefix=prefix, key_hash=_hash_key(secret))
    session.add(key)
    session.add(AuditEntry(tenant_id=tenant_id, actor="system", action="api_key.issued", target=name, data={"prefix": prefix}))
    session.flush()
    return IssuedKey(key, secret)


def verify_api_key(*, session: Session, secret: str) -> ApiKey:
    """System scope: find the key by its public prefix and compare hashes in constant time."""
    parts = secret.split("_")
    if len(parts) < 3 or not secret.startswith(API_KEY_PREFIX):
        raise NotFound("malformed API key")
    key = session.execute(select(ApiKey).where(ApiKey.prefix == parts[1])).scalar_one_or_none()
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.key_hash, _hash_key(secret)):
        raise NotFound("unknown or revoked API key")
    key.last_used_at = datetime.now(timezone.utc)
    return key


@dataclass(frozen=True)
class BootstrapResult:
    tenant: Tenant
    inbox: Inbox
    api_key_secret: str | None  # None when bootstrap had already run


def bootstrap(*, session: Session, support_address: str, slack_channel: str | None) -> BootstrapResult:
    """First tenant, inbox and admin key; idempotent (a second run changes nothing)."""
    existing = session.execute(select(Tenant).order_by(Tenant.created_at).limit(1)).scalar_one_or_none()
    if existing is not None:
        inbox = session.execute(
            select(Inbox).where(Inbox.tenant_id == existing.id).order_by(Inbox.created_at).limit(1)
        ).scalar_one_or_none()
        if inbox is None:
            inbox = create_inbox(
                session=session, tenant_id=existing.id, address=support_address, slack_channel_id=slack_channel
            )
        return BootstrapResult(existing, inbox, None)
    tenant = create_tenant(session=session, name="Default", slug="default")
    inbox = create_inbox(
        session=session, tenant_id=tenant.id, address=support_address, name="Support", slack_channel_id=slack_channel
    )
    issued = issue_api_key(session=session, tenant_id=tenant.id, name="bootstrap admin key")
    return BootstrapResult(tenant, inbox, issued.secret)
