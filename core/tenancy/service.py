"""Tenants, inboxes, agents, bootstrap. Cross-tenant lookups run in system scope.

API keys live in core.tenancy.keys (re-exported here for older callers); listing, updating and
disabling live in core.tenancy.{tenants,inboxes,agents}; the audit log in core.tenancy.audit.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidInput
from core.tenancy import audit as audit_log
from core.tenancy.audit import AuditContext
from core.tenancy.keys import API_KEY_PREFIX, IssuedKey, issue_api_key, verify_api_key
from core.tenancy.models import Agent, AgentRole, Inbox, ReplyMode, Tenant

__all__ = [
    "API_KEY_PREFIX", "IssuedKey", "issue_api_key", "verify_api_key", "is_email_address", "create_tenant",
    "create_inbox", "create_agent", "inbox_for_address", "find_or_create_agent_by_slack_id", "bootstrap",
]
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def is_email_address(value: str) -> bool:
    return bool(_ADDRESS.match(value.strip())) and "\r" not in value and "\n" not in value


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:64] or "tenant"


def flush_or_conflict(session: Session, obj: object, message: str) -> None:
    """Add and flush in a savepoint: a unique violation becomes Conflict, the transaction lives on.

    Needed where RLS hides the row we collide with (an inbox address of another tenant).
    """
    try:
        with session.begin_nested():
            session.add(obj)
            session.flush()
    except IntegrityError:
        raise Conflict(message) from None


def create_tenant(*, session: Session, name: str, slug: str | None = None) -> Tenant:
    """System scope."""
    if not name.strip():
        raise InvalidInput("the tenant name is empty")
    tenant = Tenant(id=uuid.uuid4(), name=name.strip(), slug=slug or _slugify(name))
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", tenant.slug):
        raise InvalidInput("a slug is 1-64 lowercase letters, digits and dashes")
    if session.execute(select(Tenant).where(Tenant.slug == tenant.slug)).scalar_one_or_none():
        raise Conflict(f"a tenant with slug {tenant.slug!r} exists")
    flush_or_conflict(session, tenant, f"a tenant with slug {tenant.slug!r} exists")
    return tenant


def create_inbox(
    *,
    session: Session,
    tenant_id: uuid.UUID,
    address: str,
    name: str | None = None,
    slack_channel_id: str | None = None,
    reply_mode: ReplyMode = ReplyMode.THREAD,
    send_acknowledgement: bool = False,
    acknowledgement_text: str | None = None,
    audit: AuditContext | None = None,
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
        send_acknowledgement=send_acknowledgement,
        acknowledgement_text=acknowledgement_text,
        widget_config={},
        sla_policy={},
    )
    # Addresses are unique across tenants (SMTP RCPT maps one address to one inbox).
    flush_or_conflict(session, inbox, f"the address {address} is already in use")
    if audit is not None:
        audit_log.record(session=session, tenant_id=tenant_id, audit=audit, action="inbox.created",
                         target=f"inbox:{inbox.id}", data={"address": address})
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
    audit: AuditContext | None = None,
) -> Agent:
    """An agent needs no chat account: one who works only by mail is created by email."""
    if email is not None and not is_email_address(email):
        raise InvalidInput(f"{email!r} is not an email address")
    agent = Agent(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        name=name,
        email=email.strip().lower() if email else None,
        role=role,
        slack_user_id=slack_user_id,
    )
    flush_or_conflict(session, agent, "an agent with this email or chat id exists")
    if audit is not None:
        audit_log.record(session=session, tenant_id=tenant_id, audit=audit, action="agent.created",
                         target=f"agent:{agent.id}", data={"email": agent.email, "role": role.value})
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


def find_or_create_agent_by_teams_id(
    *, session: Session, tenant_id: uuid.UUID, teams_user_id: str, name: str, email: str | None
) -> Agent:
    """The agent behind a Teams user (their Azure AD object id); linked by email to an agent the
    tenant already has (from Slack or the admin API), else created with role `agent`."""
    email = email.strip().lower() if email else None
    agent = session.execute(
        select(Agent).where(Agent.tenant_id == tenant_id, Agent.teams_user_id == teams_user_id)
    ).scalar_one_or_none()
    if agent is not None:
        return agent
    if email:
        agent = session.execute(
            select(Agent).where(Agent.tenant_id == tenant_id, Agent.email == email).with_for_update()
        ).scalar_one_or_none()
        if agent is not None and agent.teams_user_id is None:
            agent.teams_user_id = teams_user_id
            return agent
    session.execute(
        insert(Agent)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, name=name, email=email if agent is None else None,
                role=AgentRole.AGENT.value, teams_user_id=teams_user_id, active=True)
        .on_conflict_do_nothing()
    )
    return session.execute(
        select(Agent).where(Agent.tenant_id == tenant_id, Agent.teams_user_id == teams_user_id)
    ).scalar_one()


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
