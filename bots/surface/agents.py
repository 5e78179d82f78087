"""The agent behind a surface user, their role, and the audit entry of what they did.

Shared by actions, draft_actions and held_actions (public on purpose: no private helpers
imported across modules).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from bots.surface.access import Need, NotAllowed
from bots.surface.deps import SurfaceUser
from core.tenancy import audit as audit_log
from core.tenancy.audit import AuditContext
from core.tenancy.models import Agent, AgentRole
from core.tenancy.service import find_or_create_agent_by_slack_id, find_or_create_agent_by_teams_id
from core.tickets.models import ActorKind
from core.tickets.schemas import Actor


def acting_agent(session: Session, tenant_id: uuid.UUID, user: SurfaceUser, *, need: Need = Need.ACT) -> Agent:
    """The agent row for this person (created with role `agent` on first use: the adapter has
    already checked the tenant allows them), refused when deactivated or read-only for `ACT`."""
    agent = _surface_agent(session, tenant_id, user)
    if not agent.active:
        raise NotAllowed("your Threadline agent account is deactivated; ask a Threadline admin.")
    if need is Need.ACT and agent.role is AgentRole.READ_ONLY:
        raise NotAllowed("you have read-only access: you can view tickets but not reply, assign or change them.")
    return agent


def _surface_agent(session: Session, tenant_id: uuid.UUID, user: SurfaceUser) -> Agent:
    # Each surface has its own id column: a Teams AAD object id must never land in slack_user_id.
    if user.surface == "teams":
        return find_or_create_agent_by_teams_id(session=session, tenant_id=tenant_id, teams_user_id=user.user_id,
                                                name=user.name, email=user.email)
    return find_or_create_agent_by_slack_id(session=session, tenant_id=tenant_id, slack_user_id=user.user_id,
                                            name=user.name, email=user.email)


def actor(agent: Agent) -> Actor:
    return Actor(ActorKind.AGENT, str(agent.id), agent.name)


def audit_context(user: SurfaceUser) -> AuditContext:
    return AuditContext(f"{user.surface}:{user.user_id} ({user.name})")


def record(
    session: Session, tenant_id: uuid.UUID, user: SurfaceUser, *, action: str, target: str,
    data: dict[str, Any] | None = None,
) -> None:
    """Every agent action from a surface lands in the admin audit log too (same writer as the API)."""
    audit_log.record(session=session, tenant_id=tenant_id, audit=audit_context(user), action=action, target=target,
                     data=data)
