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

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bots.slack import blocks
from bots.slack.client import client_for_tenant, has_bot
from bots.slack.ids import SURFACE, Reaction
from bots.surface import views
from core.db.session import tenant_scope
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
            names = session.execute(select(Attachment.filename, Attachment.size)
                                    .where(Attachment.message_id == m.id)).all()
            post = views.thread_post(message_id=m.id, author=m.author_name or m.direction.value,
                                     direction=m.direction, reply_text=m.reply_text, body_text=m.body_text,
                                     attachments=[(n, s) for n, s in names],
                                     unverified_sender="dmarc-fail" in (m.flags or []))
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
