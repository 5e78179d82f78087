"""Held mail posted on any surface: one thread per inbox per day in the inbox's channel, one reply per
held mail with a Release button, each post made once (bots/surface/post_once.py). The adapter renders
and posts; which mail, which thread and what is recorded are decided here for every surface."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from bots.surface.held_views import HeldDigestHeader, HeldItem, held_item
from bots.surface.post_once import Placed, Poster, post_once
from core.db.session import tenant_scope
from core.registry import JobContext
from core.tenancy.models import Inbox
from core.tickets import held
from core.tickets.models import RawInbound


class HeldPosters(Protocol):
    """An adapter's posts into one inbox's channel."""

    def header(self, header: HeldDigestHeader) -> Poster:
        """The day's thread opener, a new top-level post in the channel."""

    def item(self, thread: Placed, item: HeldItem) -> Poster:
        """One held mail, a reply in the day's thread (`thread`: where its opener landed)."""


def held_to_post(session: Session, *, tenant_id: uuid.UUID, raw_id: uuid.UUID, surface: str,
                 bound_channel: Callable[[Inbox], str | None]) -> tuple[RawInbound, Inbox, str] | None:
    """A held mail not yet posted on `surface`, its inbox and the inbox's channel there; None when it
    is posted already, released, or its inbox is not bound to that surface."""
    raw = session.execute(select(RawInbound).where(RawInbound.tenant_id == tenant_id,
                                                    RawInbound.id == raw_id)).scalar_one_or_none()
    if raw is None or not raw.held or surface in (raw.surface_refs or {}) or raw.inbox_id is None:
        return None
    inbox = session.execute(select(Inbox).where(Inbox.tenant_id == tenant_id,
                                                Inbox.id == raw.inbox_id)).scalar_one_or_none()
    channel = bound_channel(inbox) if inbox is not None else None
    return (raw, inbox, channel) if inbox is not None and channel else None


def post_held(ctx: JobContext, *, raw_id: uuid.UUID, surface: str, job: str,
              bound_channel: Callable[[Inbox], str | None],
              posters: Callable[[Session, str], HeldPosters]) -> None:
    """Post one held mail into its inbox's held thread of the day, opening that thread once.

    Two mails of one day held at once: the first job's intent opens the thread; the other meets that
    live intent and is retried (post_once), then finds the thread recorded under the day's key."""
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        due = held_to_post(session, tenant_id=ctx.tenant_id, raw_id=raw_id, surface=surface,
                           bound_channel=bound_channel)
        if due is None:
            return
        raw, inbox, channel = due
        day = raw.received_at.date()
        header = HeldDigestHeader(inbox=inbox.address, day=day)
        item = held_item(held.get_held(session=session, tenant_id=ctx.tenant_id, raw_id=raw_id))
        make = posters(session, channel)
        day_key = f"{job}:{inbox.id}:{day.isoformat()}"

    def posted(session: Session, placed: Placed) -> None:
        raw = session.execute(select(RawInbound).where(RawInbound.tenant_id == ctx.tenant_id, RawInbound.id == raw_id)
                              .with_for_update()).scalar_one()
        raw.surface_refs = {**(raw.surface_refs or {}), surface: {**placed.as_json(), "day": day.isoformat()}}

    thread = post_once(ctx, make.header(header), key=day_key)
    post_once(ctx, make.item(thread, item), key=f"{job}:{raw_id}", record=posted)
