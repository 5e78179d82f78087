"""Jobs that talk to Slack. Each is idempotent and keeps a ticket's thread in order.

`sync_thread` posts the card (once) and then every message not yet mirrored, oldest first,
one transaction per post under a per-ticket advisory lock: concurrent jobs cannot reorder or
double-post, and a crash re-posts at most the one message in flight.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import Any

from slack_sdk.models.blocks import Block

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bots.slack import blocks
from bots.slack.client import client_for_tenant, has_bot
from bots.slack.ids import SURFACE, Reaction
from bots.surface import views
from core.attachments.links import download_urls
from core.db.session import tenant_scope
from core.errors import TemporaryFailure
from core.jobs import effects
from core.jobs import lease as leases
from core.jobs.models import EffectState
from core.registry import JobContext
from core.surfaces.models import PostKind, SurfacePost
from core.tenancy.models import Agent, Inbox, ReplyMode
from core.tickets.models import (
    Attachment,
    Channel,
    Contact,
    DeliveryState,
    Direction,
    Message,
    SurfaceAnchor,
    Ticket,
)

log = logging.getLogger(__name__)

SYNC_JOB = "slack.sync_thread"
CARD_JOB = "slack.update_card"
DELIVERY_JOB = "slack.delivery_notice"
REACT_JOB = "slack.react"

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


def _lock(session: Session, ticket_id: uuid.UUID) -> None:
    session.execute(_LOCK, {"key": f"slack:{ticket_id}"})


def _now() -> datetime:
    return datetime.now(timezone.utc)


def render_card(session: Session, ticket: Ticket) -> views.TicketCard:
    contact = session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    assignee = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    inbox = session.get(Inbox, ticket.inbox_id)
    return views.ticket_card(
        ticket_id=ticket.id, number=ticket.number, subject=ticket.subject,
        customer=(f"{contact.name} <{contact.email}>" if contact and contact.name else contact.email) if contact else "unknown",
        origin=ticket.channel, status=ticket.status, priority=ticket.priority,
        assignee=assignee.name if assignee else None, created_at=ticket.created_at, now=_now(),
        explicit_mode=inbox is not None and inbox.reply_mode is ReplyMode.EXPLICIT,
        unverified_sender=_opened_unverified(session, ticket),
    )


def _opened_unverified(session: Session, ticket: Ticket) -> bool:
    """Whether the customer's first message failed DMARC (shown on the card)."""
    flags = session.execute(
        select(Message.flags).where(Message.ticket_id == ticket.id, Message.direction == Direction.INBOUND)
        .order_by(Message.created_at, Message.id).limit(1)
    ).scalar_one_or_none()
    return "dmarc-fail" in (flags or [])


def _recipient(session: Session, ticket: Ticket) -> str:
    contact = session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    return contact.email if contact else "the customer"


def render_notice(session: Session, ticket: Ticket, message: Message, undo_seconds: float) -> views.ReplyNotice:
    left = max(0, int(undo_seconds - (_now() - message.created_at).total_seconds()))
    return views.reply_notice(
        message_id=message.id, recipient=_recipient(session, ticket), origin=ticket.channel,
        state=message.delivery_state, seconds_left=left, error=message.delivery_error,
    )


def _from_slack(m: Message) -> bool:
    """Agents' own thread messages are already in Slack; only their notices are ours to post."""
    return m.source is Channel.SLACK and m.direction in (Direction.NOTE, Direction.OUTBOUND)


def _sync_one(ctx: JobContext, client: WebClient, ticket_id: uuid.UUID) -> bool:
    """Post the next missing thing (card, message or notice); False when the thread is complete."""
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        _lock(session, ticket_id)
        ticket = session.get(Ticket, ticket_id)
        inbox = session.get(Inbox, ticket.inbox_id) if ticket else None
        if ticket is None or inbox is None or not inbox.slack_channel_id:
            return False
        anchor = session.execute(
            select(SurfaceAnchor).where(SurfaceAnchor.ticket_id == ticket_id, SurfaceAnchor.surface == SURFACE)
        ).scalar_one_or_none()
        if anchor is None:
            card = render_card(session, ticket)
            resp = client.chat_postMessage(channel=inbox.slack_channel_id, text=blocks.card_text(card),
                                           blocks=blocks.card_blocks(card), unfurl_links=False)
            session.add(SurfaceAnchor(tenant_id=ticket.tenant_id, ticket_id=ticket.id, surface=SURFACE,
                                      channel=resp["channel"], thread_ref=resp["ts"], card_updated_at=_now()))
            return True
        posts = session.execute(select(SurfacePost.message_id, SurfacePost.kind).where(
            SurfacePost.ticket_id == ticket_id, SurfacePost.surface == SURFACE)).all()
        mirrored = {mid for mid, kind in posts if kind in (PostKind.MESSAGE, PostKind.AGENT)}
        noticed = {mid for mid, kind in posts if kind is PostKind.NOTICE}
        for m in session.execute(select(Message).where(Message.ticket_id == ticket_id)
                                 .order_by(Message.created_at, Message.id)).scalars():
            if m.direction is Direction.OUTBOUND and m.source is Channel.SLACK:
                if m.id in noticed:
                    continue
                notice = render_notice(session, ticket, m, ctx.settings.undo_seconds)
                resp = client.chat_postMessage(channel=anchor.channel, thread_ts=anchor.thread_ref,
                                               text=blocks.notice_text(notice), blocks=blocks.notice_blocks(notice))
                session.add(SurfacePost(tenant_id=ticket.tenant_id, ticket_id=ticket.id, message_id=m.id,
                                        surface=SURFACE, kind=PostKind.NOTICE, channel=resp["channel"], ts=resp["ts"]))
                return True
            if m.id in mirrored or _from_slack(m):
                continue
            names = session.execute(select(Attachment.id, Attachment.filename, Attachment.size)
                                    .where(Attachment.message_id == m.id)
                                    .order_by(Attachment.created_at, Attachment.id)).all()
            post = views.thread_post(message_id=m.id, author=m.author_name or m.direction.value,
                                     direction=m.direction, reply_text=m.reply_text, body_text=m.body_text,
                                     attachments=[(n, s) for _i, n, s in names],
                                     unverified_sender="dmarc-fail" in (m.flags or []),
                                     links=download_urls(ctx.settings, tenant_id=ticket.tenant_id,
                                                         attachment_ids=[i for i, _n, _s in names]))
            resp = client.chat_postMessage(channel=anchor.channel, thread_ts=anchor.thread_ref,
                                           text=blocks.post_text(post),
                                           blocks=blocks.post_blocks(post, with_original=post.truncated),
                                           unfurl_links=False, unfurl_media=False)
            session.add(SurfacePost(tenant_id=ticket.tenant_id, ticket_id=ticket.id, message_id=m.id,
                                    surface=SURFACE, kind=PostKind.MESSAGE, channel=resp["channel"], ts=resp["ts"]))
            return True
        return False


def _configured(ctx: JobContext) -> bool:
    # Jobs are subscribed in every install; a tenant without a Slack bot (no SLACK_BOT_TOKEN, no
    # workspace installed over OAuth) simply has nothing to do.
    return has_bot(ctx.settings, ctx.session_factory, ctx.tenant_id)


def sync_thread(ctx: JobContext, payload: dict[str, Any]) -> None:
    if not _configured(ctx):
        return
    client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
    ticket_id = uuid.UUID(payload["ticket_id"])
    for _ in range(500):  # bounded: a thread never needs more posts than this in one go
        if not _sync_one(ctx, client, ticket_id):
            return


def update_card(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Re-render the card in place. Bursts coalesce: a job older than the last render is done."""
    if not _configured(ctx):
        return
    ticket_id = uuid.UUID(payload["ticket_id"])
    at = datetime.fromisoformat(payload["at"]) if payload.get("at") else _now()
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        _lock(session, ticket_id)
        anchor = session.execute(
            select(SurfaceAnchor).where(SurfaceAnchor.ticket_id == ticket_id, SurfaceAnchor.surface == SURFACE)
        ).scalar_one_or_none()
        ticket = session.get(Ticket, ticket_id)
        if anchor is None or ticket is None:
            return  # the card is posted with its current state by sync_thread
        if anchor.card_updated_at is not None and anchor.card_updated_at > at:
            return
        card = render_card(session, ticket)
        anchor.card_updated_at = _now()
        client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
        client.chat_update(channel=anchor.channel, ts=anchor.thread_ref,
                           text=blocks.card_text(card), blocks=blocks.card_blocks(card))


def delivery_notice(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Show what happened to an agent's reply: update the notice, react on their message."""
    if not _configured(ctx):
        return
    message_id = uuid.UUID(payload["message_id"])
    client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        message = session.get(Message, message_id)
        if message is None or message.source is not Channel.SLACK:
            return
        _lock(session, message.ticket_id)
        ticket = session.get_one(Ticket, message.ticket_id)
        posts = {kind: (channel, ts) for kind, channel, ts in session.execute(
            select(SurfacePost.kind, SurfacePost.channel, SurfacePost.ts)
            .where(SurfacePost.message_id == message_id, SurfacePost.surface == SURFACE))}
        notice = render_notice(session, ticket, message, ctx.settings.undo_seconds)
        if PostKind.NOTICE in posts:
            channel, ts = posts[PostKind.NOTICE]
            client.chat_update(channel=channel, ts=ts, text=blocks.notice_text(notice),
                               blocks=blocks.notice_blocks(notice))
        if PostKind.AGENT in posts and message.delivery_state in (DeliveryState.SENT, DeliveryState.FAILED):
            channel, ts = posts[PostKind.AGENT]
            name = Reaction.SENT if message.delivery_state is DeliveryState.SENT else Reaction.FAILED
            _react(client, channel, ts, name)
            if message.delivery_state is DeliveryState.FAILED:
                anchor = session.execute(select(SurfaceAnchor).where(
                    SurfaceAnchor.ticket_id == ticket.id, SurfaceAnchor.surface == SURFACE)).scalar_one()
                client.chat_postMessage(channel=anchor.channel, thread_ts=anchor.thread_ref,
                                        text=blocks.failure_text(views.delivery_failure(message.delivery_error)))


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
    The post carries `key` in its metadata: an attempt that finds an intent older than a lease
    (its worker died between Slack's answer and our commit) looks the post up by that key before
    posting; a younger intent belongs to a live attempt, so this one retries later.
    """
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        earlier = effects.begin(session, tenant_id=ctx.tenant_id, key=key, outbox_id=ctx.outbox_id)
    if earlier is not None and earlier.state is EffectState.DONE:
        return str(earlier.result["channel"]), str(earlier.result["ts"])
    if earlier is not None:
        held = leases.current()
        if _now() - earlier.started_at < (held.lease if held else leases.DEFAULT_LEASE):
            raise TemporaryFailure(f"another attempt is posting {key}")
        found = _find_by_key(client, channel=channel, thread_ts=thread_ts, key=key)
        if found is not None:
            return _posted(ctx, key, found)
    leases.checkpoint()
    resp = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks,
                                   metadata={"event_type": CLIENT_KEY_EVENT, "event_payload": {"key": key}},
                                   unfurl_links=False)
    return _posted(ctx, key, (str(resp["channel"]), str(resp["ts"])))


def _posted(ctx: JobContext, key: str, where: tuple[str, str]) -> tuple[str, str]:
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        effects.complete(session, key=key, result={"channel": where[0], "ts": where[1]})
    return where


def _find_by_key(client: WebClient, *, channel: str, thread_ts: str, key: str) -> tuple[str, str] | None:
    cursor: str | None = None
    for _ in range(50):  # bounded: 50 pages of a thread
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
