"""Held mail on any surface: which one a job posts next, and what an agent's Release means."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from bots.surface.agents import acting_agent, record
from bots.surface.deps import SurfaceDeps, SurfaceUser
from bots.surface.held_views import HeldItem, held_item
from core.db.session import tenant_scope
from core.tenancy.models import Inbox
from core.tickets import held
from core.tickets.models import RawInbound


def release_held(deps: SurfaceDeps, *, tenant_id: uuid.UUID, raw_id: uuid.UUID, user: SurfaceUser) -> HeldItem:
    """Release one held mail for processing as a normal mail; returns how it now looks."""
    with tenant_scope(deps.factory, tenant_id) as session:
        agent = acting_agent(session, tenant_id, user)
        held.release(session=session, tenant_id=tenant_id, raw_id=raw_id, released_by=agent.name)
        record(session, tenant_id, user, action="held.released", target=f"raw:{raw_id}")
        return held_item(held.get_held(session=session, tenant_id=tenant_id, raw_id=raw_id), released_by=agent.name)


def held_to_post(session: Session, *, tenant_id: uuid.UUID, raw_id: uuid.UUID, surface: str,
                 bound_channel: Callable[[Inbox], str | None]) -> tuple[RawInbound, Inbox, str] | None:
    """A held mail not yet posted on `surface`, its inbox and the inbox's channel there; None when it
    is posted already, released, or its inbox is not bound to that surface."""
    raw = session.execute(select(RawInbound).where(RawInbound.tenant_id == tenant_id,
                                                    RawInbound.id == raw_id)).scalar_one_or_none()
    if raw is None or not raw.held or surface in (raw.surface_refs or {}) or raw.inbox_id is None:
        return None
    inbox = session.get(Inbox, raw.inbox_id)
    channel = bound_channel(inbox) if inbox is not None else None
    return (raw, inbox, channel) if inbox is not None and channel else None
