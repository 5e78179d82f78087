"""What an agent's click on a draft card means (Send, Edit → send, Discard, Regenerate)."""

from __future__ import annotations

import uuid

from bots.surface.actions import SURFACE_CHANNEL, TicketRef, _actor, _agent, _commit_events
from bots.surface.deps import SurfaceDeps, SurfaceUser
from core.db.session import tenant_scope
from core.tickets import drafts, service
from core.tickets.models import Draft


def send_draft(deps: SurfaceDeps, *, tenant_id: uuid.UUID, draft_id: uuid.UUID, user: SurfaceUser,
               edited_text: str | None = None) -> uuid.UUID:
    """One click: the draft (or the agent's edit of it) goes out with the usual undo window."""
    with tenant_scope(deps.factory, tenant_id) as session:
        agent = _agent(session, tenant_id, user)
        out = drafts.send(session=session, registry=deps.registry, draft_id=draft_id, actor=_actor(agent),
                          agent_id=agent.id, edited_text=edited_text, source=SURFACE_CHANNEL[user.surface],
                          delay_seconds=deps.settings.undo_seconds)
        _commit_events(deps, session, out.events)
        return out.value.ticket_id


def discard_draft(deps: SurfaceDeps, *, tenant_id: uuid.UUID, draft_id: uuid.UUID, user: SurfaceUser) -> None:
    with tenant_scope(deps.factory, tenant_id) as session:
        agent = _agent(session, tenant_id, user)
        out = drafts.discard(session=session, draft_id=draft_id, actor=_actor(agent), agent_id=agent.id)
        _commit_events(deps, session, out.events)


def request_draft(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser) -> None:
    """Regenerate, or `/threadline draft 123`: the bot drafts even after a human replied."""
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ref.ticket_id)
        out = drafts.request(session=session, ticket=ticket, actor=_actor(_agent(session, ref.tenant_id, user)))
        _commit_events(deps, session, out.events)


def draft_text(deps: SurfaceDeps, *, tenant_id: uuid.UUID, draft_id: uuid.UUID) -> tuple[str, uuid.UUID]:
    """The draft's text and ticket, to pre-fill the Edit modal."""
    with tenant_scope(deps.factory, tenant_id) as session:
        draft = session.get_one(Draft, draft_id)
        return draft.text, draft.ticket_id
