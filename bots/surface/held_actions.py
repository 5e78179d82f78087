"""What an agent's Release of a held mail means, on any surface (posting it: bots/surface/held_posts.py)."""

from __future__ import annotations

import uuid

from bots.surface.agents import acting_agent, record
from bots.surface.deps import SurfaceDeps, SurfaceUser
from bots.surface.held_views import HeldItem, held_item
from core.db.session import tenant_scope
from core.tickets import held


def release_held(deps: SurfaceDeps, *, tenant_id: uuid.UUID, raw_id: uuid.UUID, user: SurfaceUser) -> HeldItem:
    """Release one held mail for processing as a normal mail; returns how it now looks."""
    with tenant_scope(deps.factory, tenant_id) as session:
        agent = acting_agent(session, tenant_id, user)
        held.release(session=session, tenant_id=tenant_id, raw_id=raw_id, released_by=agent.name)
        record(session, tenant_id, user, action="held.released", target=f"raw:{raw_id}")
        return held_item(held.get_held(session=session, tenant_id=tenant_id, raw_id=raw_id), released_by=agent.name)
