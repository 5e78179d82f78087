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
from bots.surface import render, thread_sync, views
from core.db.session import tenant_scope
from core.errors import TemporaryFailure
from core.jobs import effects
from core.jobs import lease as leases
from core.jobs.models import EffectState
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
    where = None
    if post.in_doubt:
        where = find_by_key(client, channel=post.channel, thread_ts=post.thread_ref, key=post.key)
    if where is None:
        text_, blocks_ = _message(post.view)
        leases.checkpoint()
        try:
            where = _post(client, key=post.key, channel=post.channel, thread_ts=post.thread_ref, text=text_,
                          blocks=blocks_)
        except SlackApiError:
            thread_sync.forget(ctx, post.key)  # Slack answered with an error: nothing was posted
            raise
    thread_sync.record(ctx, post, surface=SURFACE, channel=where[0], ref=where[1])
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
    for _ in range(500):  # bounded: a thread never needs more posts than this in one go
        if not _sync_one(ctx, client, ticket_id):
            return


def update_card(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Re-render the card in place. Bursts coalesce: a job older than the last render is done."""
    if not configured(ctx):
        return
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        due = thread_sync.card_update(session, surface=SURFACE, ticket_id=uuid.UUID(payload["ticket_id"]),
                                      at=payload.get("at"))
        if due is None:
            return
        anchor, card = due
        # Under the ticket's lock, so two updates land in the order they rendered; an update
        # repeated by a retry shows the same state, harmless twice.
        client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
        client.chat_update(channel=anchor.channel, ts=anchor.thread_ref, text=blocks.card_text(card),
                           blocks=blocks.card_blocks(card))


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
    post_once(ctx, client, key=f"{DELIVERY_JOB}:{message_id}:failed", channel=thread[0], thread_ts=thread[1],
              text=blocks.failure_text(failure), blocks=[])


def _react(client: WebClient, channel: str, ts: str, name: str) -> None:
    try:
        client.reactions_add(channel=channel, timestamp=ts, name=name)
    except SlackApiError as exc:
        if exc.response.get("error") != "already_reacted":  # a retried job: already done
            raise


def react(ctx: JobContext, payload: dict[str, Any]) -> None:
    client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
    _react(client, payload["channel"], payload["ts"], payload["name"])


# ---- posts that happen at most once (issue 10): an intent, a client key, a lookup ----

CLIENT_KEY_EVENT = "threadline_post"  # Slack message metadata event_type carrying our client key


def post_once(
    ctx: JobContext, client: WebClient, *, key: str, channel: str, thread_ts: str, text: str, blocks: list[Block],
) -> tuple[str, str]:
    """Post into a thread once per `key`; returns (channel, ts) of the one post.

    The intent commits before the call, the ts after it, with no transaction open during it.
    An attempt that finds an intent older than a lease (its worker died between Slack's answer and
    our commit) looks the post up by its key before posting; a younger intent belongs to a live
    attempt, so this one retries later.
    """
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        earlier = effects.begin(session, tenant_id=ctx.tenant_id, key=key, outbox_id=ctx.outbox_id)
    if earlier is not None and earlier.state is EffectState.DONE:
        return str(earlier.result["channel"]), str(earlier.result["ts"])
    if earlier is not None:
        if thread_sync.in_flight(earlier):
            raise TemporaryFailure(f"another attempt is posting {key}")
        found = find_by_key(client, channel=channel, thread_ts=thread_ts, key=key)
        if found is not None:
            return _posted(ctx, key, found)
    leases.checkpoint()
    return _posted(ctx, key, _post(client, key=key, channel=channel, thread_ts=thread_ts, text=text, blocks=blocks))


def _posted(ctx: JobContext, key: str, where: tuple[str, str]) -> tuple[str, str]:
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        effects.complete(session, key=key, result={"channel": where[0], "ts": where[1]})
    return where


CLIENT_KEY_EVENT = "threadline_post"  # Slack message metadata event_type carrying our client key
LOOKUP_PAGES = 50  # bounded: 50 pages of 200 messages


def _post(client: WebClient, *, key: str, channel: str, thread_ts: str | None, text: str,
          blocks: list[Block]) -> tuple[str, str]:
    """One chat.postMessage carrying `key` in its metadata, so a retry can find it."""
    resp = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks or None,
                                   metadata={"event_type": CLIENT_KEY_EVENT, "event_payload": {"key": key}},
                                   unfurl_links=False, unfurl_media=False)
    return str(resp["channel"]), str(resp["ts"])


def find_by_key(client: WebClient, *, channel: str, thread_ts: str | None, key: str) -> tuple[str, str] | None:
    """The (channel, ts) of our post carrying `key`: in the thread, or (no thread: a card) in the
    channel's history, newest first (an attempt in doubt is at most minutes old)."""
    cursor: str | None = None
    for _ in range(LOOKUP_PAGES):
        if thread_ts is None:
            resp = client.conversations_history(channel=channel, include_all_metadata=True, limit=200,
                                                cursor=cursor)
        else:
            resp = client.conversations_replies(channel=channel, ts=thread_ts, include_all_metadata=True,
                                                limit=200, cursor=cursor)
        messages: list[dict[str, Any]] = resp.get("messages") or []
        for m in messages:
            meta = m.get("metadata") or {}
            if meta.get("event_type") == CLIENT_KEY_EVENT and (meta.get("event_payload") or {}).get("key") == key:
                return channel, str(m["ts"])
        cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return None
    return None
