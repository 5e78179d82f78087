"""The knowledge bot's draft card in a ticket's thread on any surface: posted once per draft
(bots/surface/post_once.py), then updated in place where it landed (`Draft.surface_refs[surface]`)."""

from __future__ import annotations

import uuid
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from bots.surface import thread_sync, views
from bots.surface.post_once import Placed, Poster, placed_of, post_once
from core.db.session import tenant_scope
from core.registry import JobContext
from core.tickets.models import Draft, SurfaceAnchor


class DraftPosts(Protocol):
    """An adapter's draft card in one ticket's thread."""

    def poster(self, anchor: SurfaceAnchor, card: views.DraftCard) -> Poster:
        """The card as a new reply in the thread `anchor` starts."""

    def update(self, anchor: SurfaceAnchor, placed: Placed, card: views.DraftCard) -> None:
        """Re-render the card posted at `placed` (harmless twice)."""


def show_draft(ctx: JobContext, *, surface: str, job: str, draft_id: uuid.UUID, posts: DraftPosts) -> None:
    """Post the draft's card once, or update the one posted. Updates run under the ticket's lock, so
    two of them land in the order they rendered."""
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        shown = thread_sync.draft_to_show(session, surface=surface, draft_id=draft_id)
        if shown is None:
            return  # the draft is gone, or the ticket has no thread on this surface
        draft, anchor, card = shown
        ref = (draft.surface_refs or {}).get(surface)
        if ref is not None:
            posts.update(anchor, placed_of(ref), card)
            return
        poster = posts.poster(anchor, card)

    def posted(session: Session, placed: Placed) -> None:
        draft = session.execute(select(Draft).where(Draft.tenant_id == ctx.tenant_id, Draft.id == draft_id)
                                .with_for_update()).scalar_one()
        draft.surface_refs = {**(draft.surface_refs or {}), surface: placed.as_json()}

    post_once(ctx, poster, key=f"{job}:{draft_id}", record=posted)
