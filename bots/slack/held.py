"""Held mail in Slack: one thread per inbox per day in the inbox's channel, one reply per held mail
with a **Release** button. Nothing the pipeline ignores on evidence is out of an agent's sight."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ContextBlock, MarkdownTextObject, SectionBlock
from sqlalchemy import select
from sqlalchemy.orm import Session

from bots.slack import text as slack_text
from bots.slack.client import client_for_tenant, has_bot
from bots.slack.ids import SURFACE, ActionId
from bots.surface import render
from bots.surface.held_actions import held_to_post
from bots.surface.held_views import HeldDigestHeader, HeldItem, held_item
from core.db.session import tenant_scope
from core.registry import JobContext
from core.tickets import held
from core.tickets.models import RawInbound

log = logging.getLogger(__name__)

HELD_JOB = "slack.held_mail"


def header_blocks(header: HeldDigestHeader) -> list[Block]:
    return [SectionBlock(text=MarkdownTextObject(text=f":inbox_tray: {slack_text.fit(header.text, 2900).text}"))]


def item_text(item: HeldItem) -> str:
    return slack_text.fit(f"Held: {item.summary}", 3000).text


def item_blocks(item: HeldItem) -> list[Block]:
    who = slack_text.fit(item.sender, 300).text
    subject = slack_text.fit(item.subject, 500).text
    reason = slack_text.fit(item.reason, 1500).text
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=f"*{who}*\n{subject}")),
        ContextBlock(elements=[MarkdownTextObject(text=f"Held because: {reason}")]),
    ]
    if item.released_by:
        by = slack_text.fit(item.released_by, 200).text
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f":white_check_mark: Released by {by}: it is processed as a normal mail.")]))
    else:
        blocks.append(ActionsBlock(elements=[ButtonElement(
            text="Release", action_id=ActionId.RELEASE_HELD, value=str(item.raw_id), style="primary")]))
    return blocks


def _thread_of_day(session: Session, inbox_id: uuid.UUID, day: str) -> str | None:
    return session.execute(
        select(RawInbound.surface_refs[SURFACE]["thread_ts"].astext).where(
            RawInbound.inbox_id == inbox_id, RawInbound.surface_refs[SURFACE]["day"].astext == day
        ).limit(1)
    ).scalar_one_or_none()


def post_held(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Post one held mail into its inbox's held thread of the day (idempotent: posted once)."""
    if not has_bot(ctx.settings, ctx.session_factory, ctx.tenant_id):
        return
    raw_id = uuid.UUID(payload["raw_id"])
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        due = held_to_post(session, tenant_id=ctx.tenant_id, raw_id=raw_id, surface=SURFACE,
                           bound_channel=lambda inbox: inbox.slack_channel_id)
        if due is None:
            return
        raw, inbox, channel = due
        # One held thread per inbox per day: concurrent jobs must not open two.
        render.lock_thread(session, surface=f"{SURFACE}-held", ticket_id=inbox.id)
        day = raw.received_at.date()
        client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
        thread_ts = _thread_of_day(session, inbox.id, day.isoformat())
        if thread_ts is None:
            header = HeldDigestHeader(inbox=inbox.address, day=day)
            resp = client.chat_postMessage(channel=channel, text=slack_text.fit(header.text, 3000).text,
                                           blocks=header_blocks(header), unfurl_links=False)
            thread_ts = str(resp["ts"])
        item = held_item(held.get_held(session=session, tenant_id=ctx.tenant_id, raw_id=raw_id))
        resp = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=item_text(item),
                                       blocks=item_blocks(item), unfurl_links=False, unfurl_media=False)
        raw.surface_refs = {**(raw.surface_refs or {}), SURFACE: {
            "channel": str(resp["channel"]), "ts": str(resp["ts"]), "thread_ts": thread_ts, "day": day.isoformat()}}
