"""Post and update the knowledge bot's draft card in the ticket's Slack thread (decided in
bots/surface/draft_posts.py: one card per draft even after a crash between Slack's answer and our
commit, issue 10)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient

from bots.slack import blocks
from bots.slack.client import client_for_tenant
from bots.slack.ids import SURFACE
from bots.slack.posts import SlackPost
from bots.slack.tasks import configured, sync_thread
from bots.surface import views
from bots.surface.draft_posts import show_draft
from bots.surface.post_once import Placed
from core.registry import JobContext
from core.tickets.models import SurfaceAnchor

DRAFT_CARD_JOB = "slack.draft_card"


@dataclass(frozen=True)
class SlackDraftPosts:
    client: WebClient

    def poster(self, anchor: SurfaceAnchor, card: views.DraftCard) -> SlackPost:
        return SlackPost(self.client, anchor.channel, anchor.thread_ref, blocks.draft_text(card),
                         blocks.draft_blocks(card))

    def update(self, anchor: SurfaceAnchor, placed: Placed, card: views.DraftCard) -> None:
        self.client.chat_update(channel=placed.channel, ts=placed.ref, text=blocks.draft_text(card),
                                blocks=blocks.draft_blocks(card))


def draft_card(ctx: JobContext, payload: dict[str, Any]) -> None:
    if configured(ctx):
        sync_thread(ctx, {"ticket_id": payload["ticket_id"]})  # the card and the customer's message come first
        client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
        show_draft(ctx, surface=SURFACE, job=DRAFT_CARD_JOB, draft_id=uuid.UUID(payload["draft_id"]),
                   posts=SlackDraftPosts(client))
