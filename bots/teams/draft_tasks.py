"""Post and update the knowledge bot's draft card in the ticket's Teams thread.

Posted once per draft (intent before the call, activity id after, issue 10), then updated in
place through `Draft.surface_refs["teams"]`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from bots.surface import render
from bots.teams import cards
from bots.teams.connector import connector_for
from bots.teams.ids import SURFACE
from bots.teams.tasks import anchor_of, configured, in_flight, lock_ticket, sync_thread
from core.db.session import tenant_scope
from core.errors import OperatorError, TemporaryFailure
from core.jobs import effects
from core.jobs import lease as leases
from core.jobs.models import EffectState
from core.registry import JobContext
from core.tickets.models import Draft

DRAFT_CARD_JOB = "teams.draft_card"


def draft_card(ctx: JobContext, payload: dict[str, Any]) -> None:
    if not configured(ctx):
        return
    draft_id = uuid.UUID(payload["draft_id"])
    sync_thread(ctx, {"ticket_id": payload["ticket_id"]})  # the card and the customer's message come first
    key = f"{DRAFT_CARD_JOB}:{draft_id}"
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        draft = session.get(Draft, draft_id)
        if draft is None:
            return
        lock_ticket(session, draft.ticket_id)
        session.refresh(draft)
        anchor = anchor_of(session, draft.ticket_id)
        if anchor is None:
            return  # the inbox is not bound to Teams
        view = render.draft_card(session, draft)
        activity = cards.message(cards.draft_card(view), summary=view.headline)
        service_url = anchor.service_url or ctx.settings.teams_api_url
        ref = (draft.surface_refs or {}).get(SURFACE)
        earlier = None
        if ref is None:
            earlier = effects.begin(session, tenant_id=ctx.tenant_id, key=key, outbox_id=ctx.outbox_id)
            if earlier is not None and earlier.state is EffectState.DONE:
                ref = earlier.result
            elif earlier is not None:
                if in_flight(earlier):
                    raise TemporaryFailure(f"another attempt is posting {key}")
        thread = anchor.thread_ref
    connector = connector_for(ctx.settings)
    if ref is not None:
        connector.update(service_url, conversation_id=str(ref["conversation"]), activity_id=str(ref["id"]),
                         activity=activity)
        return
    leases.checkpoint()
    try:
        activity_id = connector.send(service_url, conversation_id=thread, activity=activity)
    except OperatorError:
        with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
            effects.forget(session, key=key)
        raise
    where = {"conversation": thread, "id": activity_id}
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        effects.complete(session, key=key, result=where)
        draft = session.execute(select(Draft).where(Draft.id == draft_id).with_for_update()).scalar_one()
        draft.surface_refs = {**(draft.surface_refs or {}), SURFACE: where}
