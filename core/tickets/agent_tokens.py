"""Agents by email (issue 16): per-agent, per-ticket reply tokens and notification preferences.

An agent's token is a different secret from the ticket's customer reply token, so a mail to
it can be told apart from a customer's: it is an agent action, and only that agent's own
verified address may use it (inbound/ingest/agent_mail.py). Tokens are longer than customer
tokens (32 characters against 16), so an unknown or revoked agent token is still recognised
as one and held instead of opening a ticket.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.tenancy import audit as audit_log
from core.tenancy.audit import AuditContext
from core.tenancy.models import Agent, AgentNotification, AgentTicketToken

AGENT_TOKEN_LENGTH = 32  # secrets.token_urlsafe(24); customer tokens are token_urlsafe(12) = 16
NOTE_PREFIX = "note-"  # support+note-<token>@…: whatever is written is an internal note


@dataclass(frozen=True)
class NotifyPrefs:
    """What an agent is mailed about. Defaults: their own tickets, not every new ticket."""

    new_tickets: bool = False  # every new ticket in the tenant's inboxes
    assigned: bool = True  # a ticket was assigned to them (by someone else)
    customer_replies: bool = True  # the customer wrote again on a ticket assigned to them
    drafts: bool = True  # a draft is ready on a ticket assigned to them

    @classmethod
    def of(cls, agent: Agent) -> NotifyPrefs:
        stored: dict[str, Any] = agent.notify_prefs or {}
        return cls(**{k: bool(v) for k, v in stored.items() if k in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, bool]:
        return {k: bool(getattr(self, k)) for k in self.__dataclass_fields__}


def set_prefs(*, session: Session, agent: Agent, **changes: bool) -> NotifyPrefs:
    unknown = set(changes) - set(NotifyPrefs.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown notification preferences: {', '.join(sorted(unknown))}")
    prefs = NotifyPrefs(**{**NotifyPrefs.of(agent).as_dict(), **changes})
    agent.notify_prefs = prefs.as_dict()
    return prefs


def change_prefs(*, session: Session, agent: Agent, changes: Mapping[str, bool], audit: AuditContext) -> NotifyPrefs:
    """The admin API's PUT and `threadline agents notify`: validate, store, and write the audit entry."""
    unknown = set(changes) - set(NotifyPrefs.__dataclass_fields__)
    if unknown:
        raise InvalidInput(f"unknown notification preferences: {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(NotifyPrefs.__dataclass_fields__)})")
    before = NotifyPrefs.of(agent).as_dict()
    prefs = set_prefs(session=session, agent=agent, **dict(changes))
    audit_log.record(session=session, tenant_id=agent.tenant_id, audit=audit, action="agent.notifications_changed",
                     target=f"agent:{agent.email or agent.id}",
                     data={k: v for k, v in prefs.as_dict().items() if before[k] != v})
    return prefs


def looks_like_agent_token(token: str) -> bool:
    """Shape only (never a customer token's length): an unknown one is held, not a new ticket."""
    return len(token) == AGENT_TOKEN_LENGTH


def split_note(token: str) -> tuple[str, bool]:
    """'note-<token>' → ('<token>', True): the separate address for internal notes."""
    if token.startswith(NOTE_PREFIX):
        return token[len(NOTE_PREFIX):], True
    return token, False


def token_for(*, session: Session, tenant_id: uuid.UUID, agent_id: uuid.UUID, ticket_id: uuid.UUID) -> AgentTicketToken:
    """The agent's token for this ticket, created on first use (concurrent jobs agree on one)."""
    session.execute(
        insert(AgentTicketToken)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, agent_id=agent_id, ticket_id=ticket_id,
                token=secrets.token_urlsafe(24))
        .on_conflict_do_nothing(index_elements=["agent_id", "ticket_id"])
    )
    return session.execute(
        select(AgentTicketToken).where(AgentTicketToken.agent_id == agent_id, AgentTicketToken.ticket_id == ticket_id)
    ).scalar_one()


def find_token(*, session: Session, tenant_id: uuid.UUID, token: str) -> AgentTicketToken | None:
    """Only the tenant whose inbox received the mail (RLS walls it in as well)."""
    return session.execute(
        select(AgentTicketToken).where(AgentTicketToken.tenant_id == tenant_id, AgentTicketToken.token == token)
    ).scalar_one_or_none()


def token_by_notification(
    *, session: Session, tenant_id: uuid.UUID, message_ids: tuple[str, ...]
) -> AgentTicketToken | None:
    """The token of the newest of our notifications that ``message_ids`` names (RFC 5322 §3.6.4)."""
    wanted = [m for m in message_ids if m][:50]
    if not wanted:
        return None
    rows = session.execute(
        select(AgentNotification.email_message_id, AgentTicketToken)
        .join(AgentTicketToken, AgentTicketToken.id == AgentNotification.token_id)
        .where(AgentNotification.tenant_id == tenant_id, AgentNotification.email_message_id.in_(wanted))
    ).all()
    by_id = {mid: tok for mid, tok in rows}
    for mid in reversed(wanted):  # the parent is last in References
        if mid in by_id:
            return by_id[mid]
    return None


def notification_ids(*, session: Session, token_id: uuid.UUID, limit: int = 10) -> list[str]:
    """Earlier notifications to this agent on this ticket, oldest first (to thread the next one)."""
    rows = session.execute(
        select(AgentNotification.email_message_id).where(AgentNotification.token_id == token_id)
        .order_by(AgentNotification.created_at.desc()).limit(limit)
    ).scalars()
    return list(reversed(list(rows)))


def revoke_tokens(*, session: Session, agent_id: uuid.UUID) -> int:
    """Revoke every token of an agent (deactivation revokes them implicitly as well)."""
    result = session.execute(
        update(AgentTicketToken)
        .where(AgentTicketToken.agent_id == agent_id, AgentTicketToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(timezone.utc))
    )
    return int(getattr(result, "rowcount", 0) or 0)
