"""Held mail (ignored or quarantined on evidence) and failed mail: list, release, replay.

Release and replay queue the ingest job; the mail is processed by the ingest worker, as when an
agent releases it from Slack or the CLI.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Query, Request, Response
from pydantic import BaseModel

from admin_api.auth import TenantPrincipalDep, audit_context
from admin_api.conventions import admin_router
from admin_api.deps import RuntimeDep, SessionDep
from admin_api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, paginate
from core.jobs.outbox import record_events
from core.tickets import raw_mail
from core.tickets.models import RawInboundStatus

router = admin_router("mail")


class InboundMailPublic(BaseModel):
    """A stored inbound record, without its bytes."""

    id: uuid.UUID
    inbox_id: uuid.UUID | None
    inbox_address: str | None
    source: str
    status: RawInboundStatus
    held: bool
    sender: str
    subject: str
    reason: str | None  # why it was held, or the error that failed it
    received_at: datetime
    attempts: int
    released_at: datetime | None
    released_by: str | None
    ticket_id: uuid.UUID | None


def to_public(row: raw_mail.RawMailRow) -> InboundMailPublic:
    raw, summary = row.raw, row.raw.summary or {}
    return InboundMailPublic(
        id=raw.id, inbox_id=raw.inbox_id, inbox_address=row.inbox_address, source=raw.source, status=raw.status,
        held=raw.held, sender=str(summary.get("from") or "unknown sender"),
        subject=str(summary.get("subject") or "(no subject)"), reason=raw.outcome or raw.error,
        received_at=raw.received_at, attempts=raw.attempts, released_at=raw.released_at,
        released_by=raw.released_by, ticket_id=raw.ticket_id,
    )


InboxQuery = Annotated[uuid.UUID | None, Query(description="only this inbox")]


@router.get("/held", response_model=Page[InboundMailPublic])
def list_held(request: Request, response: Response, session: SessionDep, principal: TenantPrincipalDep,
              inbox_id: InboxQuery = None, cursor: CursorQuery = None,
              limit: LimitQuery = DEFAULT_LIMIT) -> Page[InboundMailPublic]:
    """Mail held as automatic, looping or over a rate cap; newest first."""
    rows = raw_mail.list_raw_mail(session=session, tenant_id=principal.require_tenant(), held_only=True, status=None,
                                  inbox_id=inbox_id, after=decode_cursor(cursor, id_type=uuid.UUID), limit=limit + 1)
    return paginate(request, response, rows, limit=limit, to_public=to_public)


@router.post("/held/{raw_id}/release", response_model=InboundMailPublic)
def release(raw_id: uuid.UUID, request: Request, session: SessionDep, principal: TenantPrincipalDep,
            runtime: RuntimeDep) -> InboundMailPublic:
    """Process this mail as a normal mail (its hold rules are skipped); 409 if it is not held."""
    row, events = raw_mail.release_held(session=session, tenant_id=principal.require_tenant(), raw_id=raw_id,
                                        audit=audit_context(request, principal))
    record_events(session=session, registry=runtime.registry, events=events)
    return to_public(row)


@router.get("/failed-mail", response_model=Page[InboundMailPublic])
def list_failed(request: Request, response: Response, session: SessionDep, principal: TenantPrincipalDep,
                inbox_id: InboxQuery = None, cursor: CursorQuery = None,
                limit: LimitQuery = DEFAULT_LIMIT) -> Page[InboundMailPublic]:
    """Mail whose processing failed (kept for replay, never dropped); newest first."""
    rows = raw_mail.list_raw_mail(session=session, tenant_id=principal.require_tenant(), held_only=False,
                                  status=RawInboundStatus.FAILED, inbox_id=inbox_id,
                                  after=decode_cursor(cursor, id_type=uuid.UUID), limit=limit + 1)
    return paginate(request, response, rows, limit=limit, to_public=to_public)


@router.post("/failed-mail/{raw_id}/replay", response_model=InboundMailPublic, status_code=202)
def replay(raw_id: uuid.UUID, request: Request, session: SessionDep,
           principal: TenantPrincipalDep) -> InboundMailPublic:
    """Queue the mail for ingest again; 409 unless it is failed."""
    return to_public(raw_mail.replay_failed(session=session, tenant_id=principal.require_tenant(), raw_id=raw_id,
                                            audit=audit_context(request, principal)))
