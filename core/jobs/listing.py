"""Read-only views of outbox jobs for operators (the admin API lists dead letters)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.jobs.models import OutboxRow, OutboxStatus


def list_jobs(
    *, session: Session, status: OutboxStatus | None, job: str | None, after: tuple[datetime, int] | None, limit: int
) -> list[OutboxRow]:
    """Newest first; RLS scopes a tenant session to its own jobs."""
    stmt = select(OutboxRow)
    if status is not None:
        stmt = stmt.where(OutboxRow.status == status)
    if job:
        stmt = stmt.where(OutboxRow.job == job)
    if after is not None:
        stmt = stmt.where(tuple_(OutboxRow.created_at, OutboxRow.id) < tuple_(*after))
    return list(session.execute(stmt.order_by(OutboxRow.created_at.desc(), OutboxRow.id.desc()).limit(limit)).scalars())


def job_row(row: OutboxRow) -> dict[str, Any]:
    """What `threadline jobs list` prints (and its --json)."""
    return {"id": row.id, "job": row.job, "status": row.status.value, "attempts": row.attempts,
            "error": row.last_error, "created_at": row.created_at.isoformat(), "ticket_id":
            str(row.ticket_id) if row.ticket_id else None}


def get_job(*, session: Session, job_id: int) -> OutboxRow:
    row = session.get(OutboxRow, job_id)
    if row is None:
        raise NotFound(f"no job {job_id}")
    return row
