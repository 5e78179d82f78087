"""What an agent's click on a draft card means (Send, Edit → send, Discard, Regenerate)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from bots.surface.actions import SURFACE_CHANNEL, TicketRef, commit_events
from bots.surface.agents import acting_agent, actor, record
from bots.surface.deps import SurfaceDeps, SurfaceUser
from core.db.session import tenant_scope
from core.tickets import drafts, service
from core.tickets.models import Draft


def send_draft(deps: SurfaceDeps, *, tenant_id: uuid.UUID, draft_id: uuid.UUID, user: SurfaceUser,
               edited_text: str | None = None) -> uuid.UUID:
    """One click: the draft (or the agent's edit of it) goes out with the usual undo window."""
    with tenant_scope(deps.factory, tenant_id) as session:
        agent = acting_agent(session, tenant_id, user)
        out = drafts.send(session=session, registry=deps.registry, draft_id=draft_id, actor=actor(agent),
                          agent_id=agent.id, edited_text=edited_text, source=SURFACE_CHANNEL[user.surface],
                          delay_seconds=deps.settings.undo_seconds)
        record(session, tenant_id, user, action="draft.sent", target=f"draft:{draft_id}",
               data={"edited": edited_text is not None})
        commit_events(deps, session, out.events)
        return out.value.ticket_id


def discard_draft(deps: SurfaceDeps, *, tenant_id: uuid.UUID, draft_id: uuid.UUID, user: SurfaceUser) -> None:
    with tenant_scope(deps.factory, tenant_id) as session:
        agent = acting_agent(session, tenant_id, user)
        out = drafts.discard(session=session, draft_id=draft_id, actor=actor(agent), agent_id=agent.id)
        record(session, tenant_id, user, action="draft.discarded", target=f"draft:{draft_id}")
        commit_events(deps, session, out.events)


def request_draft(deps: SurfaceDeps, *, ref: TicketRef, user: SurfaceUser) -> None:
    """Regenerate, or `/threadline draft 123`: the bot drafts even after a human replied."""
    with tenant_scope(deps.factory, ref.tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ref.ticket_id)
        out = drafts.request(session=session, ticket=ticket, actor=actor(acting_agent(session, ref.tenant_id, user)))
        record(session, ref.tenant_id, user, action="draft.requested", target=f"ticket:{ticket.id}")
        commit_events(deps, session, out.events)


def draft_text(deps: SurfaceDeps, *, tenant_id: uuid.UUID, draft_id: uuid.UUID) -> tuple[str, uuid.UUID]:
    """The draft's text and ticket, to pre-fill the Edit modal."""
    with tenant_scope(deps.factory, tenant_id) as session:
        draft = session.execute(
            select(Draft).where(Draft.tenant_id == tenant_id, Draft.id == draft_id)
        ).scalar_one()
        return draft.text, draft.ticket_id
