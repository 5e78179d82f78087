"""Jobs that talk to Slack. Each is idempotent and keeps a ticket's thread in order.

`sync_thread` posts the card (once) and then every message not yet mirrored, oldest first, through
the shared planner (bots/surface/thread_sync.py): the intent commits under the ticket's lock, the
post happens with no transaction open and carries its key in the message metadata, and where it
landed commits after. A worker killed between Slack's answer and that commit leaves an intent that
a later attempt finds by its key (conversations.history / .replies) instead of posting twice.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from sqlalchemy.orm import Session

from bots.slack import blocks
from bots.slack.client import client_for_tenant, has_bot
from bots.slack.ids import SURFACE, Reaction
from bots.slack.posts import SlackPost
from bots.surface import render, thread_sync, views
from bots.surface.post_once import failure_key, place, post_once
from core.db.session import tenant_scope
from core.registry import JobContext
from core.surfaces.models import PostKind
from core.tenancy.models import Inbox
from core.tickets.models import Channel, DeliveryState

log = logging.getLogger(__name__)

SYNC_JOB = "slack.sync_thread"
CARD_JOB = "slack.update_card"
DELIVERY_JOB = "slack.delivery_notice"
REACT_JOB = "slack.react"


def lock_ticket(session: Session, ticket_id: uuid.UUID) -> None:
    render.lock_thread(session, surface=SURFACE, ticket_id=ticket_id)


def _message(view: thread_sync.View) -> tuple[str, list[Block]]:
    """The fallback text and the blocks of a thread post's view."""
    if isinstance(view, views.TicketCard):
        return blocks.card_text(view), blocks.card_blocks(view)
    if isinstance(view, views.ReplyNotice):
        return blocks.notice_text(view), blocks.notice_blocks(view)
    return blocks.post_text(view), blocks.post_blocks(view, with_original=view.truncated)


def _bound_channel(inbox: Inbox) -> str | None:
    return inbox.slack_channel_id


def _sync_one(ctx: JobContext, client: WebClient, ticket_id: uuid.UUID) -> bool:
    """Post the next missing thing (card, message or notice); False when there is nothing for this job."""
    post = thread_sync.plan_next(ctx, ticket_id=ticket_id, surface=SURFACE, own=Channel.SLACK, job=SYNC_JOB,
                                 bound_channel=_bound_channel)
    if post is None:
        return False
    text_, blocks_ = _message(post.view)
    placed = place(ctx, SlackPost(client, post.channel, post.thread_ref, text_, blocks_), key=post.key,
                   in_doubt=post.in_doubt)
    thread_sync.record(ctx, post, surface=SURFACE, channel=placed.channel, ref=placed.ref)
    return True


def configured(ctx: JobContext) -> bool:
    # Jobs are subscribed in every install; a tenant without a Slack bot (no SLACK_BOT_TOKEN, no
    # workspace installed over OAuth) simply has nothing to do.
    return has_bot(ctx.settings, ctx.session_factory, ctx.tenant_id)


def sync_thread(ctx: JobContext, payload: dict[str, Any]) -> None:
    if not configured(ctx):
        return
    client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
    ticket_id = uuid.UUID(payload["ticket_id"])
    thread_sync.sync_all(lambda: _sync_one(ctx, client, ticket_id))


def update_card(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Re-render the card in place (bots/surface/thread_sync.refresh_card)."""
    if not configured(ctx):
        return
    client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
    thread_sync.refresh_card(ctx, payload, surface=SURFACE, show=lambda anchor, card: client.chat_update(
        channel=anchor.channel, ts=anchor.thread_ref, text=blocks.card_text(card), blocks=blocks.card_blocks(card)))


def delivery_notice(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Show what happened to an agent's reply: update the notice, react on their message, and say a
    failure in the thread (once)."""
    if configured(ctx):
        _show_delivery(ctx, uuid.UUID(payload["message_id"]))


def _show_delivery(ctx: JobContext, message_id: uuid.UUID) -> None:
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        shown = thread_sync.notice_update(session, surface=SURFACE, own=Channel.SLACK, message_id=message_id,
                                          undo_seconds=ctx.settings.undo_seconds)
        if shown is None:
            return
        client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
        if PostKind.NOTICE in shown.posts:  # updates under the lock: they land in the order they rendered
            channel, ts = shown.posts[PostKind.NOTICE]
            client.chat_update(channel=channel, ts=ts, text=blocks.notice_text(shown.notice),
                               blocks=blocks.notice_blocks(shown.notice))
        state = shown.message.delivery_state
        if PostKind.AGENT not in shown.posts or state not in (DeliveryState.SENT, DeliveryState.FAILED):
            return
        channel, ts = shown.posts[PostKind.AGENT]
        _react(client, channel, ts, Reaction.SENT if state is DeliveryState.SENT else Reaction.FAILED)
        if state is not DeliveryState.FAILED or shown.anchor is None:
            return
        failure = views.delivery_failure(shown.message.delivery_error)
        thread = (shown.anchor.channel, shown.anchor.thread_ref)
    # A new post, so outside the transaction and once (issue 10).
    post_once(ctx, SlackPost(client, thread[0], thread[1], blocks.failure_text(failure)),
              key=failure_key(DELIVERY_JOB, message_id))


def _react(client: WebClient, channel: str, ts: str, name: str) -> None:
    try:
        client.reactions_add(channel=channel, timestamp=ts, name=name)
    except SlackApiError as exc:
        if exc.response.get("error") != "already_reacted":  # a retried job: already done
            raise


def react(ctx: JobContext, payload: dict[str, Any]) -> None:
    client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
    _react(client, payload["channel"], payload["ts"], payload["name"])
