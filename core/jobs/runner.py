"""Run one outbox job: idempotent, retried with backoff, dead-lettered when retries run out."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import system_scope
from core.errors import UserError
from core.jobs.models import OutboxRow, OutboxStatus
from core.registry import JobContext, Registry
from core.settings import Settings

log = logging.getLogger(__name__)


class RunResult(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # already done, dead or gone: a duplicate delivery of the message
    RETRY = "retry"
    DEAD = "dead"


class JobFailed(Exception):
    """Raised to the queue so it retries the message with backoff."""


def run_outbox_job(
    outbox_id: int, *, settings: Settings, factory: sessionmaker[Session], registry: Registry
) -> RunResult:
    error: BaseException | None = None
    with system_scope(factory) as claim:
        # Blocking FOR UPDATE, not SKIP LOCKED: the relay may still hold the row it just sent,
        # and a duplicate message must wait for the first run and then see DONE.
        row = claim.execute(select(OutboxRow).where(OutboxRow.id == outbox_id).with_for_update()).scalar_one_or_none()
        if row is None or row.status in (OutboxStatus.DONE, OutboxStatus.DEAD):
            return RunResult.SKIPPED
        spec = registry.jobs.get(row.job)
        row.attempts += 1
        if spec is None:
            _finish(row, OutboxStatus.DEAD, f"no handler registered for job {row.job!r}")
            log.error("job has no handler", extra={"outbox_id": outbox_id, "job": row.job})
            return RunResult.DEAD
        ctx = JobContext(
            settings=settings, session_factory=factory, tenant_id=uuid.UUID(str(row.tenant_id)),
            outbox_id=row.id, attempt=row.attempts, registry=registry,
        )
        try:
            spec.handler(ctx, dict(row.payload))
        except Exception as exc:  # recorded on the row, then retried or dead-lettered below
            error = exc
            row.last_error = f"{type(exc).__name__}: {exc}"[:4000]
            if isinstance(exc, UserError) or row.attempts > settings.job_max_retries:
                _finish(row, OutboxStatus.DEAD, row.last_error)
                log.error(
                    "job dead-lettered",
                    extra={"outbox_id": outbox_id, "job": row.job, "attempts": row.attempts, "error": row.last_error},
                )
                return RunResult.DEAD
        else:
            _finish(row, OutboxStatus.DONE, None)
            return RunResult.DONE
    # The attempt is committed above; now let the queue retry with backoff.
    log.warning("job failed, will retry", extra={"outbox_id": outbox_id, "error": str(error)})
    raise JobFailed(f"outbox job {outbox_id} failed: {error}") from error


def _finish(row: OutboxRow, status: OutboxStatus, error: str | None) -> None:
    row.status = status
    row.finished_at = datetime.now(timezone.utc)
    if error is not None:
        row.last_error = error
