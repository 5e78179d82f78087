"""The admin audit log: who did what to which object, from where, under which request id.

Service functions that change admin state take an `AuditContext` and write the entry in the
caller's unit of work, so the API and the CLI record the same thing for the same action.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from core.tenancy.models import AuditEntry


@dataclass(frozen=True)
class AuditContext:
    """Who acts: `key:<prefix> (<name>)` for API keys, `cli:<user>` for the shell, `system`."""

    actor: str
    client_ip: str | None = None
    request_id: str | None = None


SYSTEM = AuditContext("system")


def record(
    *,
    session: Session,
    tenant_id: uuid.UUID,
    audit: AuditContext,
    action: str,
    target: str | None,
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        tenant_id=tenant_id, actor=audit.actor[:200], action=action, target=target[:200] if target else None,
        data=data or {}, client_ip=audit.client_ip, request_id=audit.request_id,
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None  # prefix: "key:0a1b2c" matches that key whatever its name
    action: str | None = None  # prefix: "inbox." matches every inbox action
    target: str | None = None  # exact
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def list_entries(
    *, session: Session, tenant_id: uuid.UUID, where: AuditFilter, after: tuple[datetime, int] | None, limit: int
) -> list[AuditEntry]:
    """Newest first; `after` is the (created_at, id) of the last entry of the previous page."""
    stmt = select(AuditEntry).where(AuditEntry.tenant_id == tenant_id)
    if where.actor:
        stmt = stmt.where(AuditEntry.actor.startswith(where.actor, autoescape=True))
    if where.action:
        stmt = stmt.where(AuditEntry.action.startswith(where.action, autoescape=True))
    if where.target:
        stmt = stmt.where(AuditEntry.target == where.target)
    if where.since:
        stmt = stmt.where(AuditEntry.created_at >= where.since)
    if where.until:
        stmt = stmt.where(AuditEntry.created_at < where.until)
    if after is not None:
        stmt = stmt.where(tuple_(AuditEntry.created_at, AuditEntry.id) < tuple_(*after))
    stmt = stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit)
    return list(session.execute(stmt).scalars())
