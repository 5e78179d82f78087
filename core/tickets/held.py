"""Held mail: inbound mail that was ignored (automatic, loop, unmatched bounce) or quarantined
(rate caps) on evidence. Never dropped: agents list it and release it, and a released mail runs
through the ingest pipeline as a normal mail (its hold rules are skipped).

Surface-neutral: the CLI, Slack and the admin API call these same functions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound
from core.jobs.outbox import enqueue
from core.tenancy.models import Inbox
from core.tickets.events import DomainEvent, EventKind
from core.tickets.models import RawInbound, RawInboundStatus

# The ingest job's name; inbound registers the handler (core never imports inbound).
INGEST_JOB = "ingest.process"


@dataclass(frozen=True)
class HeldMail:
    raw_id: uuid.UUID
    inbox_id: uuid.UUID | None
    inbox_address: str | None
    received_at: datetime
    status: RawInboundStatus
    sender: str
    subject: str
    reason: str
    source: str


def held_event(raw: RawInbound) -> DomainEvent:
    """Tell the surfaces that a mail was held (they show it with a Release button)."""
    return DomainEvent(EventKind.MAIL_HELD, raw.tenant_id, None, {"raw_id": str(raw.id)})


def _held(raw: RawInbound, inbox: Inbox | None) -> HeldMail:
    summary = raw.summary or {}
    return HeldMail(
        raw_id=raw.id, inbox_id=raw.inbox_id, inbox_address=inbox.address if inbox else None,
        received_at=raw.received_at, status=raw.status, sender=str(summary.get("from") or "unknown sender"),
        subject=str(summary.get("subject") or "(no subject)"), reason=raw.outcome or raw.error or "", source=raw.source,
    )


def list_held(
    *, session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID | None = None, limit: int = 50
) -> list[HeldMail]:
    """Newest first."""
    stmt = (
        select(RawInbound, Inbox)
        .outerjoin(Inbox, and_(Inbox.id == RawInbound.inbox_id, Inbox.tenant_id == tenant_id))
        .where(RawInbound.tenant_id == tenant_id, RawInbound.held.is_(True))
        .order_by(RawInbound.received_at.desc())
        .limit(limit)
    )
    if inbox_id is not None:
        stmt = stmt.where(RawInbound.inbox_id == inbox_id)
    return [_held(raw, inbox) for raw, inbox in session.execute(stmt).all()]


def get_held(*, session: Session, tenant_id: uuid.UUID, raw_id: uuid.UUID) -> HeldMail:
    row = session.execute(
        select(RawInbound, Inbox)
        .outerjoin(Inbox, and_(Inbox.id == RawInbound.inbox_id, Inbox.tenant_id == tenant_id))
        .where(RawInbound.tenant_id == tenant_id, RawInbound.id == raw_id)
    ).first()
    if row is None:
        raise NotFound(f"no held mail {raw_id}")
    return _held(row[0], row[1])


def release(*, session: Session, tenant_id: uuid.UUID, raw_id: uuid.UUID, released_by: str) -> RawInbound:
    """Release one held mail: it is processed again as a normal mail by the ingest job."""
    raw = session.execute(
        select(RawInbound).where(RawInbound.tenant_id == tenant_id, RawInbound.id == raw_id).with_for_update()
    ).scalar_one_or_none()
    if raw is None:
        raise NotFound(f"no held mail {raw_id}")
    if not raw.held:
        if raw.released_at is not None:
            raise Conflict(f"already released by {raw.released_by or 'someone'}")
        raise Conflict("this mail is not held")
    raw.held = False
    raw.released_at = datetime.now(timezone.utc)
    raw.released_by = released_by[:200]
    raw.status = RawInboundStatus.RECEIVED
    enqueue(session=session, tenant_id=tenant_id, job=INGEST_JOB, payload={"raw_id": str(raw.id)})
    return raw
