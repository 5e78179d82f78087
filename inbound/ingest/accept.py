"""Accept an inbound payload durably: the one thing that must succeed before we say yes.

SMTP answers 250, IMAP flags/moves the message, the widget answers 2xx only after
`accept_raw` returned: the exact bytes, an idempotency key and the processing job are committed
in one transaction. A repeated delivery with the same key is recognised and stored once.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import tenant_scope
from core.jobs.outbox import enqueue
from core.tickets.held import INGEST_JOB
from core.tickets.models import RawInbound, RawInboundStatus

PROCESS_JOB = INGEST_JOB


@dataclass(frozen=True)
class Accepted:
    raw_id: uuid.UUID
    tenant_id: uuid.UUID
    duplicate: bool  # the same key was accepted before: nothing new was stored


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
        return store_raw(
            session=session, tenant_id=tenant_id, inbox_id=inbox_id, source=source, payload=payload,
            idempotency_key=idempotency_key, envelope=envelope or {}, process=process,
        )


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
    """The same as accept_raw inside the caller's transaction (SMTP stores one per inbox)."""
    raw_id = uuid.uuid4()
    inserted = session.execute(
        insert(RawInbound)
        .values(
            id=raw_id, tenant_id=tenant_id, inbox_id=inbox_id, source=source, idempotency_key=idempotency_key,
            payload=payload, envelope=envelope, status=RawInboundStatus.RECEIVED.value, attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
        .returning(RawInbound.id)
    ).scalar_one_or_none()
    if inserted is None:
        existing = session.execute(
            select(RawInbound.id).where(
                RawInbound.tenant_id == tenant_id, RawInbound.idempotency_key == idempotency_key
            )
        ).scalar_one()
        return Accepted(existing, tenant_id, duplicate=True)
    if process:
        enqueue(session=session, tenant_id=tenant_id, job=PROCESS_JOB, payload={"raw_id": str(raw_id)})
    return Accepted(raw_id, tenant_id, duplicate=False)
