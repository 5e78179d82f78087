"""Jobs that talk to Teams. Each is idempotent and keeps a ticket's channel thread in order.

`sync_thread` starts the thread with the ticket card (once), then mirrors every message not yet
in it, oldest first. Unlike the older Slack job, no transaction is open during a Bot Connector
call: a per-ticket advisory lock picks the next post and records its intent in the effects
ledger (issue 10), the post happens, and its activity id commits after. A concurrent job that
meets a young intent leaves the thread to the live job, which plans again after its post. The Bot
Connector has no client key, so each post carries its own marker (cards.marked): a retry that
finds an intent (its own attempt got no clear answer, or a worker died between the post and its
record) looks the marker up in the conversation's activities before posting again. Where the
service does not list activities, such an intent is posted again: at most one duplicate thread
post, never a lost customer message.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bots.surface import render, thread_sync, views
from bots.surface.post_once import failure_key, post_once
from bots.teams import cards
from bots.teams.connector import MaybePosted, connector_for
from bots.teams.ids import SURFACE
from bots.teams.inbound import region_url
from bots.teams.posts import TeamsPost
from core.db.session import tenant_scope
from core.errors import OperatorError
from core.jobs import effects
from core.jobs import lease as leases
from core.jobs.models import EffectState, JobEffect
from core.registry import JobContext
from core.surfaces.models import PostKind, SurfacePost
from core.tenancy.models import Inbox
from core.tickets.models import Channel, DeliveryState, SurfaceAnchor, Ticket

log = logging.getLogger(__name__)

SYNC_JOB = "teams.sync_thread"
CARD_JOB = "teams.update_card"
DELIVERY_JOB = "teams.delivery_notice"

def lock_ticket(session: Session, ticket_id: uuid.UUID) -> None:
    render.lock_thread(session, surface=SURFACE, ticket_id=ticket_id)


def configured(ctx: JobContext) -> bool:
    # Jobs are subscribed in every install; without a Teams bot there is nothing to do.
    return bool(ctx.settings.teams_app_id and ctx.settings.teams_app_password)


def anchor_of(session: Session, ticket_id: uuid.UUID) -> SurfaceAnchor | None:
    return session.execute(select(SurfaceAnchor).where(
        SurfaceAnchor.ticket_id == ticket_id, SurfaceAnchor.surface == SURFACE)).scalar_one_or_none()


def in_flight(earlier: effects.Recorded) -> bool:
    """An intent younger than a lease belongs to an attempt that may still be making its call."""
    held = leases.current()
    return render.now() - earlier.started_at < (held.lease if held else leases.DEFAULT_LEASE)


def root_id(anchor: SurfaceAnchor) -> str:
    """The card's activity id, from the thread conversation id `{channel};messageid={root}`."""
    return anchor.thread_ref.rpartition(";messageid=")[2]


@dataclass(frozen=True)
class _Post:
    """The next thing the thread lacks, decided under the lock, posted after it."""

    key: str
    activity: dict[str, Any]
    ticket_id: uuid.UUID
    message_id: uuid.UUID | None  # None: the ticket card that starts the thread
    kind: PostKind | None
    service_url: str
    where: str  # the channel id (card) or the thread conversation id (posts)
    look_up: bool = False  # an earlier attempt may have posted this: find it before posting again


def _next_post(ctx: JobContext, session: Session, ticket: Ticket, channel_id: str) -> _Post | None:
    anchor = anchor_of(session, ticket.id)
    if anchor is None:
        card = render.ticket_card(session, ticket)
        activity = cards.message(cards.ticket_card(card), summary=cards.card_text(card))
        key = f"{SYNC_JOB}:{ticket.id}:card"
        return _Post(key, cards.marked(activity, key), ticket.id, None, None,
                     region_url(session, ctx.settings, channel_id), channel_id)
    service_url = anchor.service_url or ctx.settings.teams_api_url
    missing = render.next_missing(session, ticket_id=ticket.id, surface=SURFACE, own=Channel.TEAMS)
    if missing is None:
        return None
    kind, m = missing
    if kind is PostKind.NOTICE:
        notice = render.reply_notice(session, ticket, m, ctx.settings.undo_seconds)
        key = f"{SYNC_JOB}:{m.id}:notice"
        return _Post(key, cards.marked(cards.message(cards.notice_card(notice), summary=notice.headline), key),
                     ticket.id, m.id, PostKind.NOTICE, service_url, anchor.thread_ref)
    post = render.thread_post(session, m, settings=ctx.settings)  # with signed links to its files
    key = f"{SYNC_JOB}:{m.id}:message"
    activity = cards.message(cards.post_card(post), summary=cards.post_summary(post))
    return _Post(key, cards.marked(activity, key), ticket.id, m.id, PostKind.MESSAGE, service_url, anchor.thread_ref)


def _plan(ctx: JobContext, ticket_id: uuid.UUID) -> _Post | None:
    """Under the ticket's lock: the next post, with its intent recorded (or None: complete)."""
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        lock_ticket(session, ticket_id)
        ticket = session.get(Ticket, ticket_id)
        inbox = session.get(Inbox, ticket.inbox_id) if ticket else None
        if ticket is None or inbox is None or not inbox.teams_channel_id:
            return None
        post = _next_post(ctx, session, ticket, inbox.teams_channel_id)
        if post is None:
            return None
        earlier = effects.begin(session, tenant_id=ctx.tenant_id, key=post.key, outbox_id=ctx.outbox_id)
        if earlier is None:
            return post
        if earlier.state is EffectState.DONE:
            return None
        mine = session.execute(select(JobEffect.outbox_id).where(JobEffect.key == post.key)).scalar() == ctx.outbox_id
        if in_flight(earlier) and not mine:
            # Another job is posting (or just posted) this; it plans again after its post and so
            # finishes the thread (it sees every message committed before now). Its retry covers its crash.
            return None
        # Our own earlier attempt, or an intent older than a lease (its worker died mid-call):
        # the post may exist, so it is looked up by its marker before it is posted again.
        return replace(post, look_up=True)


def _record(ctx: JobContext, post: _Post, conversation: str, activity_id: str) -> None:
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        lock_ticket(session, post.ticket_id)  # a planner sees the intent or the post, never a half
        if post.message_id is None:
            session.add(SurfaceAnchor(tenant_id=ctx.tenant_id, ticket_id=post.ticket_id, surface=SURFACE,
                                      channel=post.where, thread_ref=conversation, service_url=post.service_url,
                                      card_updated_at=render.now()))
        else:
            assert post.kind is not None
            session.add(SurfacePost(tenant_id=ctx.tenant_id, ticket_id=post.ticket_id, message_id=post.message_id,
                                    surface=SURFACE, kind=post.kind, channel=conversation, ts=activity_id))
        effects.complete(session, key=post.key, result={"conversation": conversation, "id": activity_id})


def _forget(ctx: JobContext, key: str) -> None:
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        effects.forget(session, key=key)


def _sync_one(ctx: JobContext, ticket_id: uuid.UUID) -> bool:
    post = _plan(ctx, ticket_id)
    if post is None:
        return False
    connector = connector_for(ctx.settings)
    leases.checkpoint()
    if post.look_up:
        found = connector.find_marked(post.service_url, conversation_id=post.where, marker=cards.marker(post.key))
        if found is not None:
            log.info("teams post found, not posted again", extra={"key": post.key})
            _record(ctx, post, *found)
            return True
    try:
        if post.message_id is None:
            conversation, activity_id = connector.create_thread(
                post.service_url, channel_id=post.where, tenant_id=ctx.settings.teams_tenant_id,
                activity=post.activity)
        else:
            conversation = post.where
            activity_id = connector.send(post.service_url, conversation_id=conversation, activity=post.activity)
    except MaybePosted:
        raise  # the intent stays: the job's retry looks the post up first
    except OperatorError:
        _forget(ctx, post.key)  # Teams answered with an error: nothing was posted, a retry may post
        raise
    _record(ctx, post, conversation, activity_id)
    return True


def sync_thread(ctx: JobContext, payload: dict[str, Any]) -> None:
    if not configured(ctx):
        return
    ticket_id = uuid.UUID(payload["ticket_id"])
    for _ in range(500):  # bounded: a thread never needs more posts than this in one go
        if not _sync_one(ctx, ticket_id):
            return


def update_card(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Re-render the card in place (update_activity). A job older than the last render is done."""
    if not configured(ctx):
        return
    ticket_id = uuid.UUID(payload["ticket_id"])
    at = datetime.fromisoformat(payload["at"]) if payload.get("at") else render.now()
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        lock_ticket(session, ticket_id)
        anchor, ticket = anchor_of(session, ticket_id), session.get(Ticket, ticket_id)
        if anchor is None or ticket is None:
            return  # the card is posted with its current state by sync_thread
        if anchor.card_updated_at is not None and anchor.card_updated_at > at:
            return
        card = render.ticket_card(session, ticket)
        anchor.card_updated_at = render.now()
        where = (anchor.service_url or ctx.settings.teams_api_url, anchor.thread_ref, root_id(anchor))
    # Outside the transaction: a retried update re-renders the same state, harmless twice.
    connector_for(ctx.settings).update(where[0], conversation_id=where[1], activity_id=where[2],
                                       activity=cards.message(cards.ticket_card(card), summary=cards.card_text(card)))


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
