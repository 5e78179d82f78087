"""Agents as admins see them: list, change role or name, deactivate (never deleted: tickets name them)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.tenancy import audit as audit_log
from core.tenancy.audit import AuditContext
from core.tenancy.models import Agent, AgentRole


def list_agents(
    *, session: Session, tenant_id: uuid.UUID, active: bool | None, after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Agent]:
    stmt = select(Agent).where(Agent.tenant_id == tenant_id)
    if active is not None:
        stmt = stmt.where(Agent.active.is_(active))
    if after is not None:
        stmt = stmt.where(tuple_(Agent.created_at, Agent.id) < tuple_(*after))
    return list(session.execute(stmt.order_by(Agent.created_at.desc(), Agent.id.desc()).limit(limit)).scalars())


def get_agent(*, session: Session, tenant_id: uuid.UUID, agent_id: uuid.UUID, lock: bool = False) -> Agent:
    stmt = select(Agent).where(Agent.tenant_id == tenant_id, Agent.id == agent_id)
    agent = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if agent is None:
        raise NotFound("no such agent")
    return agent


def agent_by_email(*, session: Session, tenant_id: uuid.UUID, email: str) -> Agent:
    agent = session.execute(
        select(Agent).where(Agent.tenant_id == tenant_id, Agent.email == email.strip().lower())
    ).scalar_one_or_none()
    if agent is None:
        raise NotFound(f"no agent with email {email.strip().lower()}")
    return agent


def update_agent(
    *, session: Session, agent: Agent, name: str | None = None, role: AgentRole | None = None,
    active: bool | None = None, audit: AuditContext,
) -> Agent:
    changed: dict[str, object] = {}
    if name is not None:
        if not name.strip():
            raise InvalidInput("the agent name is empty")
        if name.strip() != agent.name:
            agent.name = changed["name"] = name.strip()
    if role is not None and role != agent.role:
        agent.role = role
        changed["role"] = role.value
    if active is not None and active != agent.active:
        agent.active = changed["active"] = active
    if changed:
        action = "agent.deactivated" if changed.get("active") is False else "agent.updated"
        audit_log.record(session=session, tenant_id=agent.tenant_id, audit=audit, action=action,
                         target=f"agent:{agent.id}", data=changed)
    session.flush()
    return agent
