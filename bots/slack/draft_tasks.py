"""Post and update the knowledge bot's draft card in the ticket's thread."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from bots.slack import blocks
from bots.slack.client import client_for_tenant
from bots.slack.ids import SURFACE
from bots.slack.tasks import configured, post_once, sync_thread
from bots.surface import thread_sync
from core.db.session import tenant_scope
from core.registry import JobContext
from core.tickets.models import Draft

DRAFT_CARD_JOB = "slack.draft_card"


def draft_card(ctx: JobContext, payload: dict[str, Any]) -> None:
    if configured(ctx):
        sync_thread(ctx, {"ticket_id": payload["ticket_id"]})  # the card and the customer's message come first
        _show(ctx, uuid.UUID(payload["draft_id"]))


def _show(ctx: JobContext, draft_id: uuid.UUID) -> None:
    """Post the draft's card once, or update the one posted."""
    client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        shown = thread_sync.draft_to_show(session, surface=SURFACE, draft_id=draft_id)
        if shown is None:
            return  # the draft is gone, or the inbox is not bound to Slack
        draft, anchor, card = shown
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
