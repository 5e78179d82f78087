"""Held mail in Teams: one thread per inbox per day in the inbox's channel, one reply per held mail
with a **Release** button (Action.Execute). Nothing the pipeline ignores on evidence is out of sight.
What is posted when, and once, is decided in bots/surface/held_posts.py; this module renders and posts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bots.surface import held_posts
from bots.surface.held_views import HeldDigestHeader, HeldItem
from bots.surface.post_once import Placed
from bots.teams import cards
from bots.teams.connector import Connector, connector_for
from bots.teams.ids import SURFACE
from bots.teams.inbound import region_url
from bots.teams.posts import TeamsPost
from bots.teams.tasks import configured
from core.registry import JobContext

HELD_JOB = "teams.held_mail"


@dataclass(frozen=True)
class TeamsHeldPosters:
    connector: Connector
    service_url: str
    channel: str
    aad_tenant: str | None

    def header(self, header: HeldDigestHeader) -> TeamsPost:
        return TeamsPost(self.connector, self.service_url, self.channel,
                         cards.message(cards.held_header_card(header), summary=header.text),
                         new_thread=True, aad_tenant=self.aad_tenant)

    def item(self, thread: Placed, item: HeldItem) -> TeamsPost:
        return TeamsPost(self.connector, self.service_url, thread.channel,
                         cards.message(cards.held_item_card(item), summary=f"Held: {item.summary}"))


def post_held(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Post one held mail into its inbox's held thread of the day (posted once)."""
    if not configured(ctx):
        return

    def posters(session: Session, channel: str) -> TeamsHeldPosters:
        return TeamsHeldPosters(connector_for(ctx.settings), region_url(session, ctx.settings, channel), channel,
                                ctx.settings.teams_tenant_id)

    held_posts.post_held(ctx, raw_id=uuid.UUID(payload["raw_id"]), surface=SURFACE, job=HELD_JOB,
                         bound_channel=lambda inbox: inbox.teams_channel_id, posters=posters)
