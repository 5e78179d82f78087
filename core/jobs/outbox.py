"""Write outbox rows in the caller's transaction: the side effect is committed with the change."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.relay import wake_relay
from core.registry import Registry
from core.tickets.events import DomainEvent


def record_events(*, session: Session, registry: Registry, events: Iterable[DomainEvent]) -> list[OutboxRow]:
    """One outbox row per (event, subscribed job), so each job retries on its own; one relay wake-up."""
    rows: list[OutboxRow] = []
    for event in events:
        for job in registry.jobs_for(event.kind):
            if not registry.concerned(job, session, event):
                continue
            rows.append(
                _row(
                    tenant_id=event.tenant_id,
                    job=job,
                    payload={"event": event.kind, "ticket_id": str(event.ticket_id) if event.ticket_id else None,
                             "at": datetime.now(UTC).isoformat(), **event.data},
                    ticket_id=event.ticket_id,
                )
            )
    _add(session, rows)
    return rows


def enqueue_many(
    *, session: Session, tenant_id: uuid.UUID, job: str, payloads: Sequence[dict[str, Any]]
) -> list[OutboxRow]:
    """Several rows of one job in one flush and one relay wake-up (SMTP's group commit)."""
    rows = [_row(tenant_id=tenant_id, job=job, payload=p, ticket_id=None) for p in payloads]
    _add(session, rows)
    return rows


def _row(*, tenant_id: uuid.UUID, job: str, payload: dict[str, Any], ticket_id: uuid.UUID | None) -> OutboxRow:
    return OutboxRow(tenant_id=tenant_id, job=job, payload=payload, status=OutboxStatus.PENDING, ticket_id=ticket_id)


def _add(session: Session, rows: list[OutboxRow]) -> None:
    if not rows:
        return
    session.add_all(rows)
    wake_relay(session)


def enqueue(
    *,
    session: Session,
    tenant_id: uuid.UUID,
    job: str,
    payload: dict[str, Any],
    ticket_id: uuid.UUID | None = None,
    delay_seconds: float = 0,
) -> OutboxRow:
    """Ask for a job to run after this transaction commits (optionally not before a delay)."""
    row = OutboxRow(tenant_id=tenant_id, job=job, payload=payload, status=OutboxStatus.PENDING, ticket_id=ticket_id)
    if delay_seconds:
        row.available_at = datetime.now(UTC) + timedelta(seconds=delay_seconds)
    session.add(row)
    wake_relay(session)
    return row
