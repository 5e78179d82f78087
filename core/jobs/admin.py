"""Operator actions on jobs: retry dead letters."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, update
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import system_scope
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.relay import wake_relay


def retry_jobs(*, factory: sessionmaker[Session], ids: Sequence[int] | None) -> int:
    """Dead (or named) jobs go back to pending with a fresh retry budget."""
    with system_scope(factory) as session:
        stmt = update(OutboxRow).values(
            status=OutboxStatus.PENDING, attempts=0, available_at=func.now(), finished_at=None,
            lease_token=None, lease_until=None,
        )
        if ids:
            # A row a live worker holds is left alone: resetting it would start a second run.
            live = (OutboxRow.status == OutboxStatus.RUNNING) & (OutboxRow.lease_until >= func.now())
            stmt = stmt.where(OutboxRow.id.in_(list(ids)), OutboxRow.status != OutboxStatus.DONE, ~live)
        else:
            stmt = stmt.where(OutboxRow.status == OutboxStatus.DEAD)
        retried = int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
        if retried:
            wake_relay(session)  # run them now, not at the relay's fallback poll
        return retried
