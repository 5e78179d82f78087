"""Post and update the knowledge bot's draft card in the ticket's Teams thread (decided in
bots/surface/draft_posts.py: posted once per draft, issue 10, then updated in place through
`Draft.surface_refs["teams"]`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from bots.surface import views
from bots.surface.draft_posts import show_draft
from bots.surface.post_once import Placed
from bots.teams import cards
from bots.teams.connector import connector_for
from bots.teams.ids import SURFACE
from bots.teams.posts import TeamsPost
from bots.teams.tasks import configured, sync_thread
from core.registry import JobContext
from core.settings import Settings
from core.tickets.models import SurfaceAnchor

DRAFT_CARD_JOB = "teams.draft_card"


@dataclass(frozen=True)
class TeamsDraftPosts:
    settings: Settings

    def _service_url(self, anchor: SurfaceAnchor) -> str:
        return anchor.service_url or self.settings.teams_api_url

    def poster(self, anchor: SurfaceAnchor, card: views.DraftCard) -> TeamsPost:
        return TeamsPost(connector_for(self.settings), self._service_url(anchor), anchor.thread_ref,
                         cards.message(cards.draft_card(card), summary=card.headline))

    def update(self, anchor: SurfaceAnchor, placed: Placed, card: views.DraftCard) -> None:
        connector_for(self.settings).update(self._service_url(anchor), conversation_id=placed.channel,
                                            activity_id=placed.ref,
                                            activity=cards.message(cards.draft_card(card), summary=card.headline))


def draft_card(ctx: JobContext, payload: dict[str, Any]) -> None:
    if configured(ctx):
        sync_thread(ctx, {"ticket_id": payload["ticket_id"]})  # the card and the customer's message come first
        show_draft(ctx, surface=SURFACE, job=DRAFT_CARD_JOB, draft_id=uuid.UUID(payload["draft_id"]),
                   posts=TeamsDraftPosts(ctx.settings))
