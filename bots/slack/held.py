"""Held mail in Slack: one thread per inbox per day in the inbox's channel, one reply per held mail
with a **Release** button. Nothing the pipeline ignores on evidence is out of an agent's sight. What
is posted when, and once, is decided in bots/surface/held_posts.py; this module renders and posts."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ContextBlock, MarkdownTextObject, SectionBlock

from bots.slack import text as slack_text
from bots.slack.client import client_for_tenant, has_bot
from bots.slack.ids import SURFACE, ActionId
from bots.slack.posts import SlackPost
from bots.surface import held_posts
from bots.surface.held_views import HeldDigestHeader, HeldItem
from bots.surface.post_once import Placed
from core.registry import JobContext

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


@dataclass(frozen=True)
class SlackHeldPosters:
    client: WebClient
    channel: str

    def header(self, header: HeldDigestHeader) -> SlackPost:
        return SlackPost(self.client, self.channel, None, slack_text.fit(header.text, 3000).text, header_blocks(header))

    def item(self, thread: Placed, item: HeldItem) -> SlackPost:
        return SlackPost(self.client, thread.channel, thread.ref, item_text(item), item_blocks(item))


def post_held(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Post one held mail into its inbox's held thread of the day (posted once: bots/surface/held_posts.py)."""
    if not has_bot(ctx.settings, ctx.session_factory, ctx.tenant_id):
        return
    client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
    held_posts.post_held(ctx, raw_id=uuid.UUID(payload["raw_id"]), surface=SURFACE, job=HELD_JOB,
                         bound_channel=lambda inbox: inbox.slack_channel_id,
                         posters=lambda _session, channel: SlackHeldPosters(client, channel))
