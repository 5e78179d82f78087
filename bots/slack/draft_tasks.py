"""Post and update the knowledge bot's draft card in the ticket's thread."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from bots.slack import blocks
from bots.slack.ids import SURFACE
from bots.slack.client import client_for_tenant
from bots.slack.tasks import _configured, _lock, post_once, sync_thread
from bots.surface import views
from core.db.session import tenant_scope
from core.registry import JobContext
from core.tenancy.models import Agent
from core.tickets.models import Draft, SurfaceAnchor

DRAFT_CARD_JOB = "slack.draft_card"


def draft_card(ctx: JobContext, payload: dict[str, Any]) -> None:
    if not _configured(ctx):
        return
    draft_id = uuid.UUID(payload["draft_id"])
    sync_thread(ctx, {"ticket_id": payload["ticket_id"]})  # the card and the customer's message come first
    client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        draft = session.get(Draft, draft_id)
        if draft is None:
            return
        _lock(session, draft.ticket_id)
        session.refresh(draft, with_for_update=True)
        anchor = session.execute(select(SurfaceAnchor).where(
            SurfaceAnchor.ticket_id == draft.ticket_id, SurfaceAnchor.surface == SURFACE)).scalar_one_or_none()
        if anchor is None:
            return  # the inbox is not bound to Slack
        agent = session.get(Agent, draft.decided_by_agent_id) if draft.decided_by_agent_id else None
        card = views.draft_card(draft_id=draft.id, text=draft.text, citations=list(draft.citations or []),
                                confidence=draft.confidence, state=draft.state.value,
                                decided_by=agent.name if agent else None)
        refs = dict(draft.surface_refs or {})
        if SURFACE in refs:
            client.chat_update(channel=refs[SURFACE]["channel"], ts=refs[SURFACE]["ts"],
                               text=blocks.draft_text(card), blocks=blocks.draft_blocks(card))
            return
        thread = (anchor.channel, anchor.thread_ref)
    # Posted outside the transaction with a client key: one card per draft even after a crash
    # between Slack's answer and our commit (issue 10).
    channel, ts = post_once(ctx, client, key=f"{DRAFT_CARD_JOB}:{draft_id}", channel=thread[0], thread_ts=thread[1],
                            text=blocks.draft_text(card), blocks=blocks.draft_blocks(card))
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        draft = session.execute(select(Draft).where(Draft.id == draft_id).with_for_update()).scalar_one()
        draft.surface_refs = {**(draft.surface_refs or {}), SURFACE: {"channel": channel, "ts": ts}}
