"""Jobs that talk to Teams. Each is idempotent and keeps a ticket's channel thread in order.

`sync_thread` starts the thread with the ticket card (once), then mirrors every message not yet in
it, oldest first, through the shared planner (bots/surface/thread_sync.py), as Slack does: the
intent commits under the ticket's lock, the post happens with no transaction open carrying its
marker (bots/teams/posts.py), and its activity id commits after. A retry that finds an intent it
cannot prove finished looks the marker up in the conversation's activities before posting again.
Where the service does not list activities (Microsoft's Bot Connector), such an intent is posted
again: at most one duplicate thread post, never a lost customer message.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from bots.surface import thread_sync, views
from bots.surface.post_once import failure_key, place, post_once
from bots.teams import cards
from bots.teams.connector import connector_for
from bots.teams.ids import SURFACE
from bots.teams.inbound import region_url
from bots.teams.posts import TeamsPost
from core.db.session import tenant_scope
from core.registry import JobContext
from core.settings import Settings
from core.surfaces.models import PostKind
from core.tenancy.models import Inbox
from core.tickets.models import Channel, DeliveryState, SurfaceAnchor

log = logging.getLogger(__name__)

SYNC_JOB = "teams.sync_thread"
CARD_JOB = "teams.update_card"
DELIVERY_JOB = "teams.delivery_notice"


def teams_configured(settings: Settings) -> bool:
    return bool(settings.teams_app_id and settings.teams_app_password)


def configured(ctx: JobContext) -> bool:
    # Events fan out to these jobs only with a Teams bot configured (registry `wanted`), but a row
    # written before the settings changed may still arrive: then there is nothing to do.
    return teams_configured(ctx.settings)


def root_id(anchor: SurfaceAnchor) -> str:
    """The card's activity id, from the thread conversation id `{channel};messageid={root}`."""
    return anchor.thread_ref.rpartition(";messageid=")[2]


def _activity(view: thread_sync.View) -> dict[str, Any]:
    if isinstance(view, views.TicketCard):
        return cards.message(cards.ticket_card(view), summary=cards.card_text(view))
    if isinstance(view, views.ReplyNotice):
        return cards.message(cards.notice_card(view), summary=view.headline)
    return cards.message(cards.post_card(view), summary=cards.post_summary(view))  # with signed links to its files


def _bound_channel(inbox: Inbox) -> str | None:
    return inbox.teams_channel_id


def _sync_one(ctx: JobContext, ticket_id: uuid.UUID) -> bool:
    """Post the next missing thing (card, message or notice); False when there is nothing for this job."""
    post = thread_sync.plan_next(ctx, ticket_id=ticket_id, surface=SURFACE, own=Channel.TEAMS, job=SYNC_JOB,
                                 bound_channel=_bound_channel,
                                 service_url=lambda session, channel: region_url(session, ctx.settings, channel))
    if post is None:
        return False
    card = post.message_id is None
    poster = TeamsPost(connector_for(ctx.settings), post.service_url or ctx.settings.teams_api_url,
                       post.channel if card else str(post.thread_ref), _activity(post.view), new_thread=card,
                       aad_tenant=ctx.settings.teams_tenant_id)
    placed = place(ctx, poster, key=post.key, in_doubt=post.in_doubt)
    # Replies in a Teams thread address its conversation id `{channel};messageid={root}`.
    thread_sync.record(ctx, post, surface=SURFACE, channel=placed.channel, ref=placed.channel if card else placed.ref)
    return True


def sync_thread(ctx: JobContext, payload: dict[str, Any]) -> None:
    if not configured(ctx):
        return
    ticket_id = uuid.UUID(payload["ticket_id"])
    thread_sync.sync_all(lambda: _sync_one(ctx, ticket_id))


def update_card(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Re-render the card in place with update_activity (bots/surface/thread_sync.refresh_card)."""
    if not configured(ctx):
        return
    connector = connector_for(ctx.settings)

    def show(anchor: SurfaceAnchor, card: views.TicketCard) -> None:
        connector.update(anchor.service_url or ctx.settings.teams_api_url, conversation_id=anchor.thread_ref,
                         activity_id=root_id(anchor),
                         activity=cards.message(cards.ticket_card(card), summary=cards.card_text(card)))

    thread_sync.refresh_card(ctx, payload, surface=SURFACE, show=show)


def delivery_notice(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Show what happened to an agent's reply: the notice card updated, a failure said in the thread (once)."""
    if not configured(ctx):
        return
    message_id = uuid.UUID(payload["message_id"])
    connector = connector_for(ctx.settings)
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        shown = thread_sync.notice_update(session, surface=SURFACE, own=Channel.TEAMS, message_id=message_id,
                                          undo_seconds=ctx.settings.undo_seconds)
        if shown is None or shown.anchor is None or PostKind.NOTICE not in shown.posts:
            return  # sync_thread posts the notice with its current state
        service_url, thread = shown.anchor.service_url or ctx.settings.teams_api_url, shown.anchor.thread_ref
        conversation, activity_id = shown.posts[PostKind.NOTICE]
        # Under the lock: two updates land in the order they rendered; a retried one shows the same state.
        connector.update(service_url, conversation_id=conversation, activity_id=activity_id,
                         activity=cards.message(cards.notice_card(shown.notice), summary=shown.notice.headline))
        if shown.message.delivery_state is not DeliveryState.FAILED:
            return
        line = views.delivery_failure(shown.message.delivery_error)
    post_once(ctx, TeamsPost(connector, service_url, thread,
                             cards.message(cards.failure_card(f"❌ {line}"), summary=line)),
              key=failure_key(DELIVERY_JOB, message_id))
