"""Held mail in Teams: one thread per inbox per day in the inbox's channel, one reply per held mail
with a **Release** button (Action.Execute). Nothing the pipeline ignores on evidence is out of sight.

The day's thread and each item are posted outside any transaction, each with its intent in the
effects ledger (issue 10); the inbox's lock only decides who opens the day's thread.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from bots.surface import render
from bots.surface.held_views import HeldDigestHeader, held_item
from bots.teams import cards
from bots.teams.connector import connector_for
from bots.teams.ids import SURFACE
from bots.teams.inbound import region_url
from bots.teams.tasks import configured, in_flight
from core.db.session import tenant_scope
from core.errors import TemporaryFailure
from core.jobs import effects
from core.jobs import lease as leases
from core.jobs.models import EffectState
from core.registry import JobContext
from core.tenancy.models import Inbox
from core.tickets import held
from core.tickets.models import RawInbound

HELD_JOB = "teams.held_mail"


def post_held(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Post one held mail into its inbox's held thread of the day (posted once)."""
    if not configured(ctx):
        return
    raw_id = uuid.UUID(payload["raw_id"])
    item_key = f"{HELD_JOB}:{raw_id}"
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        raw = session.execute(select(RawInbound).where(RawInbound.tenant_id == ctx.tenant_id,
                                                        RawInbound.id == raw_id)).scalar_one_or_none()
        if raw is None or not raw.held or SURFACE in (raw.surface_refs or {}) or raw.inbox_id is None:
            return
        inbox = session.get(Inbox, raw.inbox_id)
        if inbox is None or not inbox.teams_channel_id:
            return
        channel, day = inbox.teams_channel_id, raw.received_at.date()
        header = HeldDigestHeader(inbox=inbox.address, day=day)
        item = held_item(held.get_held(session=session, tenant_id=ctx.tenant_id, raw_id=raw_id))
        render.lock_thread(session, surface=f"{SURFACE}-held", ticket_id=inbox.id)
        earlier = effects.begin(session, tenant_id=ctx.tenant_id, key=item_key, outbox_id=ctx.outbox_id)
        if earlier is not None and (earlier.state is EffectState.DONE or in_flight(earlier)):
            return  # posted, or being posted by a live attempt
        thread_key = f"{HELD_JOB}:{inbox.id}:{day.isoformat()}"
        opened = effects.begin(session, tenant_id=ctx.tenant_id, key=thread_key, outbox_id=ctx.outbox_id)
        if opened is not None and opened.state is not EffectState.DONE and in_flight(opened):
            raise TemporaryFailure("another attempt is opening today's held thread")  # rolls back our intent too
        thread = str(opened.result["conversation"]) if opened is not None and opened.state is EffectState.DONE else None
        service_url = region_url(session, ctx.settings, channel)
    connector = connector_for(ctx.settings)
    leases.checkpoint()
    if thread is None:
        thread, _root = connector.create_thread(service_url, channel_id=channel, tenant_id=ctx.settings.teams_tenant_id,
                                                activity=cards.message(cards.held_header_card(header),
                                                                       summary=header.text))
        with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
            effects.complete(session, key=thread_key, result={"conversation": thread})
    activity_id = connector.send(service_url, conversation_id=thread,
                                 activity=cards.message(cards.held_item_card(item), summary=f"Held: {item.summary}"))
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        effects.complete(session, key=item_key, result={"conversation": thread, "id": activity_id})
        raw = session.execute(select(RawInbound).where(RawInbound.id == raw_id).with_for_update()).scalar_one()
        raw.surface_refs = {**(raw.surface_refs or {}), SURFACE: {
            "conversation": thread, "id": activity_id, "day": day.isoformat()}}
