"""Run one outbox job under a lease: claim, run with no transaction open, record by token.

1. `lease.claim`: a short transaction marks the row running with a fresh token and commits.
2. The handler runs with no open transaction and no row lock; a heartbeat renews the lease, so
   a job may take longer than one lease without being started a second time.
3. `lease.finish`: a second short transaction records done / dead / retry, only if the token
   still owns the row. Retries go back through the outbox (status pending, `available_at` after
   a backoff), never through dramatiq's own retries: one retry chain per row.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import StrEnum

from sqlalchemy.orm import Session, sessionmaker

from core.errors import UserError
from core.jobs import lease as leases
from core.jobs.models import OutboxStatus
from core.registry import JobContext, Registry
from core.settings import Settings

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=5)


class RunResult(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # done, dead, gone, or leased by another live attempt: a duplicate delivery
    RETRY = "retry"
    DEAD = "dead"
    STALE = "stale"  # this attempt lost its lease while working; its result was not recorded


class JobFailed(Exception):
    """The attempt failed and the row is pending again with a backoff (callers may ignore it)."""


def backoff(settings: Settings, attempt: int) -> timedelta:
    """Doubling from THREADLINE_JOB_MIN_BACKOFF_MS, capped at five minutes."""
    delay = timedelta(milliseconds=settings.job_min_backoff_ms * 2 ** max(attempt - 1, 0))
    return min(delay, MAX_BACKOFF)


def run_outbox_job(
    outbox_id: int, *, settings: Settings, factory: sessionmaker[Session], registry: Registry,
    lease: timedelta = leases.DEFAULT_LEASE,
) -> RunResult:
    claim = leases.claim(factory=factory, outbox_id=outbox_id, lease=lease)
    if claim is None:
        return RunResult.SKIPPED
    fields = {"outbox_id": outbox_id, "job": claim.job, "attempt": claim.attempt}
    spec = registry.jobs.get(claim.job)
    if spec is None:
        leases.finish(factory=factory, claim=claim, status=OutboxStatus.DEAD,
                      error=f"no handler registered for job {claim.job!r}")
        log.error("job has no handler", extra=fields)
        return RunResult.DEAD
    ctx = JobContext(settings=settings, session_factory=factory, tenant_id=claim.tenant_id,
                     outbox_id=outbox_id, attempt=claim.attempt, registry=registry)
    error: Exception | None = None
    with leases.heartbeat(leases.Held(factory, claim, lease)):
        try:
            spec.handler(ctx, dict(claim.payload))
        except Exception as exc:  # recorded on the row below, then retried or dead-lettered
            error = exc
    if error is None:
        status, message, result = OutboxStatus.DONE, None, RunResult.DONE
    elif isinstance(error, leases.LeaseLost):
        log.warning("job stopped: its lease was lost", extra=fields)
        return RunResult.STALE
    else:
        message = f"{type(error).__name__}: {error}"
        dead = isinstance(error, UserError) or claim.attempt > settings.job_max_retries
        status, result = (OutboxStatus.DEAD, RunResult.DEAD) if dead else (OutboxStatus.PENDING, RunResult.RETRY)
    if not leases.finish(factory=factory, claim=claim, status=status, error=message,
                         retry_in=backoff(settings, claim.attempt)):
        log.warning("job result not recorded: another attempt owns the row now", extra=fields)
        return RunResult.STALE
    if result is RunResult.DEAD:
        log.error("job dead-lettered", extra={**fields, "error": message})
    elif result is RunResult.RETRY:
        log.warning("job failed, will retry", extra={**fields, "error": message})
        raise JobFailed(f"outbox job {outbox_id} failed: {message}") from error
    return result
