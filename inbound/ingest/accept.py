"""Accept an inbound payload durably: the one thing that must succeed before we say yes.

SMTP answers 250, IMAP flags/moves the message, the widget answers 2xx only after
`accept_raw` returned: the exact bytes, an idempotency key and the processing job are committed
in one transaction. A repeated delivery with the same key is recognised and stored once.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import tenant_scope
from core.jobs.outbox import enqueue_many
from core.tickets.held import INGEST_JOB
from core.tickets.models import RawInbound, RawInboundStatus, Ticket

PROCESS_JOB = INGEST_JOB

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    raw_id: uuid.UUID
    tenant_id: uuid.UUID
    duplicate: bool  # the same key was accepted before: nothing new was stored
    first_received_at: datetime | None = None  # of the record a duplicate repeats
    ticket_number: int | None = None  # where that record went, once processed


def duplicate_reason(received_at: datetime | None, ticket_number: int | None) -> str:
    """What an operator reads about a repeated delivery (log line, raw listing, outcome)."""
    when = received_at.strftime("%Y-%m-%d %H:%M:%S UTC") if received_at else "an earlier time"
    where = f"ticket #{ticket_number}" if ticket_number is not None else "not processed yet"
    return f"duplicate of mail received at {when} ({where})"


def log_accepted(accepted: Accepted, *, source: str) -> None:
    """After the commit: a repeated delivery is answered like the first, and said so at INFO
    (a test mail sent twice without Message-ID or Date must not vanish without a word)."""
    if accepted.duplicate:
        log.info("mail ignored: %s", duplicate_reason(accepted.first_received_at, accepted.ticket_number),
                 extra={"raw_id": str(accepted.raw_id), "source": source})


def content_key(*parts: bytes | str) -> str:
    """A stable idempotency key from the delivery's identifying parts (sha256 hex)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\x00")
    return h.hexdigest()


def accept_raw(
    factory: sessionmaker[Session],
    *,
    tenant_id: uuid.UUID,
    inbox_id: uuid.UUID | None,
    source: str,
    payload: bytes,
    idempotency_key: str,
    envelope: dict[str, Any] | None = None,
    process: bool = True,
) -> Accepted:
    """Commit the raw payload (and its processing job) or raise; never half-store."""
    with tenant_scope(factory, tenant_id) as session:
        accepted = store_raw(
            session=session, tenant_id=tenant_id, inbox_id=inbox_id, source=source, payload=payload,
            idempotency_key=idempotency_key, envelope=envelope or {}, process=process,
        )
    log_accepted(accepted, source=source)
    return accepted


@dataclass(frozen=True)
class RawIn:
    """One payload to store (for `store_raws`)."""

    inbox_id: uuid.UUID | None
    source: str
    payload: bytes
    idempotency_key: str
    envelope: dict[str, Any]


def store_raw(
    *,
    session: Session,
    tenant_id: uuid.UUID,
    inbox_id: uuid.UUID | None,
    source: str,
    payload: bytes,
    idempotency_key: str,
    envelope: dict[str, Any],
    process: bool = True,
) -> Accepted:
    """The same as accept_raw inside the caller's transaction."""
    (accepted,) = store_raws(
        session=session, tenant_id=tenant_id, items=[RawIn(inbox_id, source, payload, idempotency_key, envelope)],
        process=process,
    )
    return accepted


def store_raws(
    *, session: Session, tenant_id: uuid.UUID, items: Sequence[RawIn], process: bool = True
) -> list[Accepted]:
    """Several payloads of one tenant in the caller's transaction: one INSERT for all, one for
    their jobs (SMTP's group commit); a key seen before is a repeat, stored once."""
    ids = [uuid.uuid4() for _ in items]
    inserted = {
        key: raw_id
        for raw_id, key in session.execute(
            insert(RawInbound)
            .values([
                dict(id=raw_id, tenant_id=tenant_id, inbox_id=item.inbox_id, source=item.source,
                     idempotency_key=item.idempotency_key, payload=item.payload, envelope=item.envelope,
                     status=RawInboundStatus.RECEIVED.value, attempts=0)
                for raw_id, item in zip(ids, items, strict=True)
            ])
            .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
            .returning(RawInbound.id, RawInbound.idempotency_key)
        ).all()
    }
    out: list[Accepted] = []
    claimed: set[str] = set()
    for raw_id, item in zip(ids, items, strict=True):
        key = item.idempotency_key
        if inserted.get(key) == raw_id and key not in claimed:
            claimed.add(key)
            out.append(Accepted(raw_id, tenant_id, duplicate=False))
        else:  # stored before, or twice in this batch
            out.append(_redelivered(session, tenant_id, key))
    if process:
        enqueue_many(session=session, tenant_id=tenant_id, job=PROCESS_JOB,
                     payloads=[{"raw_id": str(a.raw_id)} for a in out if not a.duplicate])
    return out


def _redelivered(session: Session, tenant_id: uuid.UUID, idempotency_key: str) -> Accepted:
    """Count the repeat on the first record (shown by `threadline raw list`) and say where it went."""
    number = (
        select(Ticket.number)
        .where(Ticket.tenant_id == tenant_id, Ticket.id == RawInbound.ticket_id)
        .scalar_subquery()
    )
    repeats = func.coalesce(RawInbound.envelope["redeliveries"].as_integer(), 0) + 1
    row = session.execute(
        update(RawInbound)
        .where(RawInbound.tenant_id == tenant_id, RawInbound.idempotency_key == idempotency_key)
        .values(envelope=RawInbound.envelope.op("||")(
            func.jsonb_build_object("redeliveries", repeats, "last_redelivery_at", func.now())
        ))
        .returning(RawInbound.id, RawInbound.received_at, number)
    ).one()
    return Accepted(row[0], tenant_id, duplicate=True, first_received_at=row[1], ticket_number=row[2])
