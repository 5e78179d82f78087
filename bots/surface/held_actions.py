"""What an agent's Release on a held mail means, on any surface."""

from __future__ import annotations

import uuid

from bots.surface.deps import SurfaceDeps, SurfaceUser
from bots.surface.held_views import HeldItem, held_item
from core.db.session import tenant_scope
from core.tenancy.service import find_or_create_agent_by_slack_id
from core.tickets import held


def release_held(deps: SurfaceDeps, *, tenant_id: uuid.UUID, raw_id: uuid.UUID, user: SurfaceUser) -> HeldItem:
    """Release one held mail for processing as a normal mail; returns how it now looks."""
    with tenant_scope(deps.factory, tenant_id) as session:
        agent = find_or_create_agent_by_slack_id(
            session=session, tenant_id=tenant_id, slack_user_id=user.user_id, name=user.name, email=user.email
        )
        held.release(session=session, tenant_id=tenant_id, raw_id=raw_id, released_by=agent.name)
        return held_item(held.get_held(session=session, tenant_id=tenant_id, raw_id=raw_id), released_by=agent.name)
