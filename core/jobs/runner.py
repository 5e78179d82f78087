"""Run one outbox job under a lease: claim, run with no transaction open, record by token.

1. `lease.claim`: a short transaction marks the row running with a fresh token and commits.
2. The handler runs with no open transaction and no row lock; a heartbeat renews the lease, so
   a job may take longer than one lease without being started a second time.
3. `lease.finish`: a second short transaction records done / dead / retry, only if the token
   still owns the row. Retries go back through the outbox (status pending, `available_at` after
   a backoff), never through dramatiq's own retries: one retry chain per row.

A job registered with `batch=True` (ingest: many short jobs, each idempotent and in its own
transaction) also takes up to THREADLINE_JOB_BATCH - 1 more waiting rows of the same job, runs them
one after the other under one heartbeat, and records every outcome in one transaction: three
commits per mail became one plus two per batch (issue 14). Each row keeps its own lease token, so
a worker dying mid-batch leaves leases that expire and are requeued like any other, and the
dramatiq messages of the rows it took find them taken or done (SKIPPED, one UPDATE that matches
nothing).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import StrEnum

from sqlalchemy.orm import Session, sessionmaker

from core.errors import UserError
from core.jobs import lease as leases
from core.jobs.models import OutboxStatus
from core.registry import JobContext, JobSpec, Registry
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
    spec = registry.jobs.get(claim.job)
    if spec is None:
        leases.finish(factory=factory, claim=claim, status=OutboxStatus.DEAD,
                      error=f"no handler registered for job {claim.job!r}")
        log.error("job has no handler", extra=_fields(claim))
        return RunResult.DEAD
    held = leases.Held(factory, claim, lease)
    if spec.batch and settings.job_batch > 1:
        return _run_batch(held, spec, settings=settings, registry=registry)
    with leases.heartbeat(held):
        outcome, result = _attempt(held, spec, settings=settings, registry=registry)
    if outcome is None:
        return result
    if not leases.finish(factory=factory, claim=claim, status=outcome.status, error=outcome.error,
                         retry_in=outcome.retry_in):
        log.warning("job result not recorded: another attempt owns the row now", extra=_fields(claim))
        return RunResult.STALE
    return _reported(outcome, result)


def _fields(claim: leases.Claim) -> dict[str, object]:
    return {"outbox_id": claim.outbox_id, "job": claim.job, "attempt": claim.attempt}


def _attempt(
    held: leases.Held, spec: JobSpec, *, settings: Settings, registry: Registry
) -> tuple[leases.Outcome | None, RunResult]:
    """Run the handler once; the outcome to record (None: the lease was lost, record nothing)."""
    claim = held.claim
    ctx = JobContext(settings=settings, session_factory=held.factory, tenant_id=claim.tenant_id,
                     outbox_id=claim.outbox_id, attempt=claim.attempt, registry=registry)
    try:
        with leases.holding(held):
            spec.handler(ctx, dict(claim.payload))
    except leases.LeaseLost:
        log.warning("job stopped: its lease was lost", extra=_fields(claim))
        return None, RunResult.STALE
    except Exception as exc:  # recorded on the row, then retried or dead-lettered
        message = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, UserError) or claim.attempt > settings.job_max_retries:
            return leases.Outcome(claim, OutboxStatus.DEAD, message), RunResult.DEAD
        return (leases.Outcome(claim, OutboxStatus.PENDING, message, backoff(settings, claim.attempt)),
                RunResult.RETRY)
    return leases.Outcome(claim, OutboxStatus.DONE), RunResult.DONE


def _reported(outcome: leases.Outcome, result: RunResult) -> RunResult:
    """Log a recorded failure; a retry raises JobFailed (the row is pending again)."""
    fields = _fields(outcome.claim)
    if result is RunResult.DEAD:
        log.error("job dead-lettered", extra={**fields, "error": outcome.error})
    elif result is RunResult.RETRY:
        log.warning("job failed, will retry", extra={**fields, "error": outcome.error})
        raise JobFailed(f"outbox job {outcome.claim.outbox_id} failed: {outcome.error}")
    return result


def _run_batch(first: leases.Held, spec: JobSpec, *, settings: Settings, registry: Registry) -> RunResult:
    """The asked-for row, then up to `job_batch - 1` more of the same job; one outcome each,
    all recorded in one transaction. Returns (or raises for) the asked-for row's result."""
    more = leases.claim_more(factory=first.factory, job=first.claim.job, exclude=first.claim.outbox_id,
                             limit=settings.job_batch - 1, lease=first.lease)
    helds = [first, *(leases.Held(first.factory, c, first.lease) for c in more)]
    done: list[tuple[leases.Outcome, RunResult]] = []
    results: dict[int, RunResult] = {}
    with leases.heartbeat(first, *helds[1:]):
        for held in helds:
            if held.lost.is_set():  # the heartbeat saw it taken over: not ours to run
                results[held.claim.outbox_id] = RunResult.STALE
                continue
            outcome, result = _attempt(held, spec, settings=settings, registry=registry)
            results[held.claim.outbox_id] = result
            if outcome is not None:
                done.append((outcome, result))
    recorded = leases.finish_all(factory=first.factory, outcomes=[o for o, _ in done])
    for outcome, result in done:
        if outcome.claim.outbox_id not in recorded:
            log.warning("job result not recorded: another attempt owns the row now", extra=_fields(outcome.claim))
            results[outcome.claim.outbox_id] = RunResult.STALE
        elif outcome.claim is not first.claim:
            try:
                _reported(outcome, result)
            except JobFailed:
                pass  # recorded: pending again with a backoff
    mine = results[first.claim.outbox_id]
    if mine in (RunResult.DEAD, RunResult.RETRY):
        return _reported(next(o for o, _ in done if o.claim is first.claim), mine)
    return mine
