"""One post per client key on any surface (issue 10): the shared layer decides, the adapter posts.

For posts outside a ticket's sequence of thread posts (bots/surface/thread_sync.py): a draft card, a
delivery failure line, the day's held-mail thread and its items. The intent commits in the effects
ledger before the call; the call runs with no transaction open and carries the key (Slack message
metadata, a hidden Teams marker); where the post landed commits after, together with whatever the
caller records beside it. An attempt that meets an intent it cannot prove finished (its own job's
earlier attempt, or another's older than a lease: a worker that died between the post and the
record) looks the post up by its key before posting again; another job's young intent is live, so
this attempt is retried later.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from bots.surface.thread_sync import live_elsewhere
from core.db.session import tenant_scope
from core.errors import TemporaryFailure
from core.jobs import effects
from core.jobs import lease as leases
from core.jobs.models import EffectState
from core.registry import JobContext


@dataclass(frozen=True)
class Placed:
    """Where a post landed: Slack (channel, ts), Teams (conversation id, activity id)."""

    channel: str
    ref: str

    def as_json(self) -> dict[str, str]:
        return {"channel": self.channel, "ref": self.ref}


def placed_of(recorded: dict[str, Any]) -> Placed:
    """A recorded place, also in the shapes written before this module ({channel, ts} by Slack,
    {conversation, id} by Teams)."""
    channel = recorded.get("channel") or recorded.get("conversation")
    ref = recorded.get("ref") or recorded.get("ts") or recorded.get("id")
    return Placed(str(channel), str(ref))


class Poster(Protocol):
    """One keyed post as an adapter makes it."""

    @property
    def refusals(self) -> tuple[type[BaseException], ...]:
        """The surface's answers that prove nothing was posted: the intent goes, a retry may post."""

    @property
    def unclear(self) -> tuple[type[BaseException], ...]:
        """Checked first: answers that leave it open (the intent stays; the retry looks it up)."""

    def find(self, key: str) -> Placed | None:
        """Our post carrying `key`, or None (not there, or the surface cannot list its posts)."""

    def post(self, key: str) -> Placed:
        """Post once, carrying `key` where `find` can see it."""


Record = Callable[[Session, Placed], None]


def place(ctx: JobContext, poster: Poster, *, key: str, in_doubt: bool) -> Placed:
    """With `key`'s intent committed and no transaction open: the post, found where an earlier attempt
    may have made it (`in_doubt`), else made now. A refusal drops the intent; an unclear answer keeps it."""
    found = poster.find(key) if in_doubt else None
    if found is not None:
        return found
    leases.checkpoint()
    try:
        return poster.post(key)
    except poster.unclear:
        raise  # it may exist: the intent stays and the retry looks it up
    except poster.refusals:
        with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
            effects.forget(session, key=key)
        raise


def post_once(ctx: JobContext, poster: Poster, *, key: str, record: Record | None = None) -> Placed:
    """The one post for `key`: posted now, found from an attempt in doubt, or as recorded before.
    `record` (idempotent) runs in the transaction that records the place."""
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        earlier = effects.begin(session, tenant_id=ctx.tenant_id, key=key, outbox_id=ctx.outbox_id)
    if earlier is not None and earlier.state is EffectState.DONE:
        placed = placed_of(earlier.result)
        if record is not None:  # a ledger entry from before `record` committed with it: harmless again
            with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
                record(session, placed)
        return placed
    if earlier is not None and live_elsewhere(ctx, earlier):
        raise TemporaryFailure(f"another attempt is posting {key}")
    found = place(ctx, poster, key=key, in_doubt=earlier is not None)
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        effects.complete(session, key=key, result=found.as_json())
        if record is not None:
            record(session, found)
    return found


def failure_key(job: str, message_id: uuid.UUID) -> str:
    """The key of the one line in the thread that says an agent's reply failed."""
    return f"{job}:{message_id}:failed"
