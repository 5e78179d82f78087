"""Held and failed inbound mail for operators (admin API and CLI): keyset lists, release, replay.

Release is core.tickets.held.release (the call Slack and the CLI make); replay resets a failed
record to `received` and queues the ingest job, as release does, so the admin API never runs
the pipeline itself. Both write the admin audit log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound
from core.jobs.outbox import enqueue
from core.tenancy import audit as audit_log
from core.tenancy.audit import AuditContext
from core.tenancy.models import Inbox
from core.tickets import held
from core.tickets.events import DomainEvent, EventKind
from core.tickets.models import RawInbound, RawInboundStatus

MAIL_SOURCES = frozenset({"smtp", "imap", "eml"})  # payload is the message as received (RFC 5322)


@dataclass(frozen=True)
class RawMailRow:
    raw: RawInbound
    inbox_address: str | None

    @property
    def id(self) -> uuid.UUID:
        return self.raw.id

    @property
    def created_at(self) -> datetime:
        return self.raw.received_at


def list_raw_mail(
    *, session: Session, tenant_id: uuid.UUID, held_only: bool, status: RawInboundStatus | None,
    inbox_id: uuid.UUID | None, after: tuple[datetime, uuid.UUID] | None, limit: int,
) -> list[RawMailRow]:
    """Newest first; held mail (`held_only`) or records in `status` (failed mail)."""
    stmt = (select(RawInbound, Inbox.address).outerjoin(Inbox, Inbox.id == RawInbound.inbox_id)
            .where(RawInbound.tenant_id == tenant_id))
    if held_only:
        stmt = stmt.where(RawInbound.held.is_(True))
    if status is not None:
        stmt = stmt.where(RawInbound.status == status)
    if inbox_id is not None:
        stmt = stmt.where(RawInbound.inbox_id == inbox_id)
    if after is not None:
        stmt = stmt.where(tuple_(RawInbound.received_at, RawInbound.id) < tuple_(*after))
    stmt = stmt.order_by(RawInbound.received_at.desc(), RawInbound.id.desc()).limit(limit)
    return [RawMailRow(raw, address) for raw, address in session.execute(stmt).all()]


def get_raw_mail(*, session: Session, tenant_id: uuid.UUID, raw_id: uuid.UUID) -> RawMailRow:
    row = session.execute(select(RawInbound, Inbox.address).outerjoin(Inbox, Inbox.id == RawInbound.inbox_id)
                          .where(RawInbound.tenant_id == tenant_id, RawInbound.id == raw_id)).first()
    if row is None:
        raise NotFound(f"no inbound record {raw_id}")
    return RawMailRow(row[0], row[1])


def release_held(
    *, session: Session, tenant_id: uuid.UUID, raw_id: uuid.UUID, audit: AuditContext
) -> tuple[RawMailRow, list[DomainEvent]]:
    raw = held.release(session=session, tenant_id=tenant_id, raw_id=raw_id, released_by=audit.actor)
    audit_log.record(session=session, tenant_id=tenant_id, audit=audit, action="mail.released",
                     target=f"raw_inbound:{raw.id}")
    events = [DomainEvent(EventKind.MAIL_RELEASED, tenant_id, None, {"raw_id": str(raw.id)})]
    return get_raw_mail(session=session, tenant_id=tenant_id, raw_id=raw.id), events


def replay_failed(*, session: Session, tenant_id: uuid.UUID, raw_id: uuid.UUID, audit: AuditContext) -> RawMailRow:
    """Run a failed record through ingest again (after the bug that failed it is fixed)."""
    raw = session.execute(select(RawInbound).where(RawInbound.tenant_id == tenant_id, RawInbound.id == raw_id)
                          .with_for_update()).scalar_one_or_none()
    if raw is None:
        raise NotFound(f"no inbound record {raw_id}")
    if raw.status is not RawInboundStatus.FAILED:
        raise Conflict(f"this record is {raw.status.value}, not failed: nothing to replay")
    raw.status = RawInboundStatus.RECEIVED
    enqueue(session=session, tenant_id=tenant_id, job=held.INGEST_JOB, payload={"raw_id": str(raw.id)})
    audit_log.record(session=session, tenant_id=tenant_id, audit=audit, action="mail.replayed",
                     target=f"raw_inbound:{raw.id}", data={"error": (raw.error or "")[:500]})
    return get_raw_mail(session=session, tenant_id=tenant_id, raw_id=raw.id)


def raw_mail_bytes(*, session: Session, raw_id: uuid.UUID) -> bytes:
    """The mail exactly as received (RLS scopes the lookup to the session's tenant)."""
    raw = session.get(RawInbound, raw_id)
    if raw is None or raw.source not in MAIL_SOURCES:
        raise NotFound("this message did not come in by mail: there is no raw mail")
    return bytes(raw.payload)
