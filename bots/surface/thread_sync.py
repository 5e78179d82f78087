"""A ticket's thread on one surface, each post made at most once (issue 10), decided once for every adapter.

Under the ticket's advisory lock, `plan_next` picks what the thread lacks next (the card, a mirrored
message, the notice under an agent's reply) and commits its intent in the effects ledger. The adapter
posts with no transaction open (post_once.place), then `record` commits where the post landed together
with the ledger entry. A job that meets another job's young intent leaves the thread to that live
attempt (it plans again after its post). An intent older than a lease (its worker died mid-call), or
one of this job's own earlier attempt (it got no clear answer), comes back `in_doubt`: an adapter that
can find a post by its client key looks it up before posting again. Posts outside the ticket's
sequence (draft cards, held mail, failure lines) take the same path through `post_once.post_once`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bots.surface import render, views
from core.db.session import tenant_scope
from core.jobs import effects
from core.jobs import lease as leases
from core.jobs.models import EffectState
from core.registry import JobContext
from core.surfaces.models import PostKind, SurfacePost
from core.tenancy.models import Inbox
from core.tickets.models import Channel, Draft, Message, SurfaceAnchor, Ticket

View = views.TicketCard | views.ReplyNotice | views.ThreadPost


@dataclass(frozen=True)
class NextPost:
    """The next thing a thread lacks, with its intent committed under `key`."""

    key: str  # also the client key the post carries, where the surface can store one
    ticket_id: uuid.UUID
    message_id: uuid.UUID | None  # None: the ticket card that starts the thread
    kind: PostKind | None  # None for the card
    view: View
    channel: str  # where the card goes (the bound channel), or the anchor's channel
    thread_ref: str | None  # the anchor's thread reference; None for the card
    service_url: str | None  # the anchor's (Teams), None otherwise
    in_doubt: bool = False  # an earlier attempt died mid-call: it may have posted


def anchor_of(session: Session, *, surface: str, ticket_id: uuid.UUID) -> SurfaceAnchor | None:
    return session.execute(select(SurfaceAnchor).where(
        SurfaceAnchor.ticket_id == ticket_id, SurfaceAnchor.surface == surface)).scalar_one_or_none()


def in_flight(earlier: effects.Recorded) -> bool:
    """An intent younger than a lease belongs to an attempt that may still be making its call."""
    held = leases.current()
    return render.now() - earlier.started_at < (held.lease if held else leases.DEFAULT_LEASE)


def live_elsewhere(ctx: JobContext, earlier: effects.Recorded) -> bool:
    """The intent is another job's and young: that attempt may still be posting. Our own job's
    earlier attempt is over (we hold its lease now), so its post is in doubt, not live."""
    return earlier.outbox_id != ctx.outbox_id and in_flight(earlier)


ServiceUrl = Callable[[Session, str], str]  # where a new thread in a channel is started (Teams' regional URL)


def _next(ctx: JobContext, session: Session, *, ticket: Ticket, surface: str, own: Channel, job: str,
          channel: str, service_url: ServiceUrl | None) -> NextPost | None:
    anchor = anchor_of(session, surface=surface, ticket_id=ticket.id)
    if anchor is None:
        return NextPost(f"{job}:{ticket.id}:card", ticket.id, None, None, render.ticket_card(session, ticket),
                        channel, None, service_url(session, channel) if service_url else None)
    missing = render.next_missing(session, ticket_id=ticket.id, surface=surface, own=own)
    if missing is None:
        return None
    kind, m = missing
    view: View
    if kind is PostKind.NOTICE:
        view = render.reply_notice(session, ticket, m, ctx.settings.undo_seconds)
    else:
        view = render.thread_post(session, m, settings=ctx.settings)
    return NextPost(f"{job}:{m.id}:{kind.value}", ticket.id, m.id, kind, view, anchor.channel, anchor.thread_ref,
                    anchor.service_url)


def plan_next(
    ctx: JobContext, *, ticket_id: uuid.UUID, surface: str, own: Channel, job: str,
    bound_channel: Callable[[Inbox], str | None], service_url: ServiceUrl | None = None,
) -> NextPost | None:
    """Under the ticket's lock: the next post with its intent recorded, or None (the thread is
    complete, the inbox is not bound here, or a live attempt is posting). `service_url`: for a
    surface whose threads live at a service URL, where the card starts one (kept on the anchor)."""
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        render.lock_thread(session, surface=surface, ticket_id=ticket_id)
        ticket = session.get(Ticket, ticket_id)
        inbox = session.get(Inbox, ticket.inbox_id) if ticket else None
        channel = bound_channel(inbox) if inbox is not None else None
        if ticket is None or not channel:
            return None
        post = _next(ctx, session, ticket=ticket, surface=surface, own=own, job=job, channel=channel,
                     service_url=service_url)
        if post is None:
            return None
        earlier = effects.begin(session, tenant_id=ctx.tenant_id, key=post.key, outbox_id=ctx.outbox_id)
        if earlier is None:
            return post
        if earlier.state is EffectState.DONE or live_elsewhere(ctx, earlier):
            # Posted (and recorded with it), or being posted by a live attempt that plans again
            # after its post and so finishes the thread; its retry covers its crash.
            return None
        return replace(post, in_doubt=True)


def sync_all(post_next: Callable[[], bool]) -> None:
    """Post what the thread lacks, one post at a time, until `post_next` finds nothing to post; bounded,
    as a thread never needs more posts than this in one go."""
    for _ in range(500):
        if not post_next():
            return


def record(ctx: JobContext, post: NextPost, *, surface: str, channel: str, ref: str) -> None:
    """The post landed at (`channel`, `ref`): for the card, the thread's anchor; else the post's place."""
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        render.lock_thread(session, surface=surface, ticket_id=post.ticket_id)  # planners see intent or post
        if post.message_id is None:
            session.add(SurfaceAnchor(tenant_id=ctx.tenant_id, ticket_id=post.ticket_id, surface=surface,
                                      channel=post.channel, thread_ref=ref, service_url=post.service_url,
                                      card_updated_at=render.now()))
        else:
            assert post.kind is not None
            session.add(SurfacePost(tenant_id=ctx.tenant_id, ticket_id=post.ticket_id, message_id=post.message_id,
                                    surface=surface, kind=post.kind, channel=channel, ts=ref))
        effects.complete(session, key=post.key, result={"channel": channel, "ref": ref})


def forget(ctx: JobContext, key: str) -> None:
    """The surface refused the post (nothing was posted): a retry may post."""
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        effects.forget(session, key=key)


def card_update(session: Session, *, surface: str, ticket_id: uuid.UUID,
                at: str | None) -> tuple[SurfaceAnchor, views.TicketCard] | None:
    """Under the ticket's lock: the card's anchor and a fresh render of it, stamped now. None when the
    card is not posted yet (the thread's sync posts it as it is) or a render newer than `at` (the
    ISO time the change was asked for) already ran: bursts of changes coalesce."""
    render.lock_thread(session, surface=surface, ticket_id=ticket_id)
    anchor, ticket = anchor_of(session, surface=surface, ticket_id=ticket_id), session.get(Ticket, ticket_id)
    if anchor is None or ticket is None:
        return None
    if anchor.card_updated_at is not None and anchor.card_updated_at > (datetime.fromisoformat(at) if at
                                                                        else render.now()):
        return None
    anchor.card_updated_at = render.now()
    return anchor, render.ticket_card(session, ticket)


def refresh_card(ctx: JobContext, payload: dict[str, Any], *, surface: str,
                 show: Callable[[SurfaceAnchor, views.TicketCard], object]) -> None:
    """The card-update job of every surface: re-render the card in place (`show`). Bursts coalesce. The
    update runs under the ticket's lock, so two land in the order they rendered; one repeated by a
    retry shows the same state, harmless twice."""
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        due = card_update(session, surface=surface, ticket_id=uuid.UUID(payload["ticket_id"]), at=payload.get("at"))
        if due is not None:
            show(*due)


def draft_to_show(session: Session, *, surface: str,
                  draft_id: uuid.UUID) -> tuple[Draft, SurfaceAnchor, views.DraftCard] | None:
    """Under the ticket's lock, with the draft row locked: the draft, its thread's anchor and its card;
    None when the draft is gone or the ticket has no thread on this surface."""
    draft = session.get(Draft, draft_id)
    if draft is None:
        return None
    render.lock_thread(session, surface=surface, ticket_id=draft.ticket_id)
    session.refresh(draft, with_for_update=True)
    anchor = anchor_of(session, surface=surface, ticket_id=draft.ticket_id)
    return None if anchor is None else (draft, anchor, render.draft_card(session, draft))


@dataclass(frozen=True)
class NoticeUpdate:
    """An agent's reply written on this surface, as its notice and reactions show it now."""

    message: Message
    notice: views.ReplyNotice
    posts: dict[PostKind, tuple[str, str]]  # this message's posts on the surface: (channel, ref) by kind
    anchor: SurfaceAnchor | None


def notice_update(session: Session, *, surface: str, own: Channel, message_id: uuid.UUID,
                  undo_seconds: float) -> NoticeUpdate | None:
    """Under the ticket's lock: the notice of an agent's reply written on `surface` (None for a
    message written elsewhere: its thread post needs no notice)."""
    message = session.get(Message, message_id)
    if message is None or message.source is not own:
        return None
    render.lock_thread(session, surface=surface, ticket_id=message.ticket_id)
    ticket = session.get_one(Ticket, message.ticket_id)
    posts = {kind: (channel, ref) for kind, channel, ref in session.execute(
        select(SurfacePost.kind, SurfacePost.channel, SurfacePost.ts)
        .where(SurfacePost.message_id == message_id, SurfacePost.surface == surface))}
    return NoticeUpdate(message, render.reply_notice(session, ticket, message, undo_seconds), posts,
                        anchor_of(session, surface=surface, ticket_id=ticket.id))
