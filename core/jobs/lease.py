"""Leases on outbox rows: claim in one short transaction, renew while working, finish by token.

No transaction stays open while a job runs its side effect. Whoever holds an unexpired lease owns
the row; a worker that lost its lease (it stalled, or the scheduler requeued the row after the
lease passed) cannot record a result, because every write checks its `lease_token` (a fencing
token). Side effects carry their own idempotency keys (core/jobs/effects.py) for that case.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import system_scope
from core.jobs.models import OutboxRow, OutboxStatus

log = logging.getLogger(__name__)

# Longer than one SMTP session (30 s timeout); an LLM call (120 s) is covered by renewals.
DEFAULT_LEASE = timedelta(seconds=60)
# A row handed to Redis is leased to the queue this long; lost messages come back after it.
ENQUEUE_LEASE = timedelta(minutes=15)


_ASYNC_COMMIT = text("SELECT set_config('synchronous_commit', 'off', true)")


@contextmanager
def bookkeeping(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A lease transaction that commits without waiting for its WAL flush (`synchronous_commit`
    off for it alone): a claim, renewal or outcome lost in a Postgres crash only sends the row
    around again once its lease expires, and every job is idempotent. The job's own writes commit
    synchronously, and a synchronous commit flushes every earlier record, so a job's effects are
    never durable while the claim before them is not. Saves two flushes per job (issue 14)."""
    with system_scope(factory) as session:
        session.execute(_ASYNC_COMMIT)
        yield session


class LeaseLost(Exception):
    """This attempt no longer owns its row: stop before the next side effect."""


@dataclass(frozen=True)
class Claim:
    outbox_id: int
    token: uuid.UUID
    job: str
    tenant_id: uuid.UUID
    attempt: int
    payload: dict[str, object]


def claim(*, factory: sessionmaker[Session], outbox_id: int, lease: timedelta) -> Claim | None:
    """Take the row unless it is finished or someone else holds a live lease (then None)."""
    token = uuid.uuid4()
    with bookkeeping(factory) as session:
        # One UPDATE: under READ COMMITTED it waits for a relay still holding the row, then
        # re-checks the WHERE, so two deliveries of one message cannot both win.
        row = session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.id == outbox_id,
                OutboxRow.status.in_([OutboxStatus.PENDING, OutboxStatus.ENQUEUED, OutboxStatus.RUNNING]),
                or_(OutboxRow.status != OutboxStatus.RUNNING, OutboxRow.lease_until < func.now()),
            )
            .values(status=OutboxStatus.RUNNING, lease_token=token, attempts=OutboxRow.attempts + 1,
                    lease_until=func.now() + lease)
            .returning(OutboxRow.job, OutboxRow.tenant_id, OutboxRow.attempts, OutboxRow.payload)
        ).one_or_none()
    if row is None:
        return None
    return Claim(outbox_id, token, row.job, uuid.UUID(str(row.tenant_id)), row.attempts, dict(row.payload))


def claim_more(
    *, factory: sessionmaker[Session], job: str, exclude: int, limit: int, lease: timedelta
) -> list[Claim]:
    """Take up to `limit` more waiting rows of `job` (any tenant), oldest first, each with its own
    token, in one transaction: rows another worker or the relay holds are skipped, never waited for.

    Waiting = pending and due, or enqueued (its dramatiq message, when it comes, finds the row
    taken or done and is skipped). A worker that dies holding them leaves leases that expire and
    are requeued like any other."""
    if limit <= 0:
        return []
    waiting = (
        select(OutboxRow.id)
        .where(
            OutboxRow.job == job,
            OutboxRow.id != exclude,
            or_(
                (OutboxRow.status == OutboxStatus.PENDING) & (OutboxRow.available_at <= func.now()),
                OutboxRow.status == OutboxStatus.ENQUEUED,
            ),
        )
        .order_by(OutboxRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with bookkeeping(factory) as session:
        rows = session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(waiting.scalar_subquery()))
            .values(status=OutboxStatus.RUNNING, lease_token=func.gen_random_uuid(),
                    attempts=OutboxRow.attempts + 1, lease_until=func.now() + lease)
            .returning(OutboxRow.id, OutboxRow.lease_token, OutboxRow.job, OutboxRow.tenant_id, OutboxRow.attempts,
                       OutboxRow.payload)
            .execution_options(synchronize_session=False)
        ).all()
    return sorted(
        (Claim(row.id, uuid.UUID(str(row.lease_token)), row.job, uuid.UUID(str(row.tenant_id)), row.attempts,
               dict(row.payload)) for row in rows),
        key=lambda c: c.outbox_id,
    )


def renew(*, factory: sessionmaker[Session], claim: Claim, lease: timedelta) -> bool:
    """Extend the lease; False when it was lost (requeued, or finished by someone else)."""
    with bookkeeping(factory) as session:
        result = session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == claim.outbox_id, OutboxRow.lease_token == claim.token,
                   OutboxRow.status == OutboxStatus.RUNNING)
            .values(lease_until=func.now() + lease)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass
class Held:
    """The lease of the attempt running in this thread, for checkpoints inside a job."""

    factory: sessionmaker[Session]
    claim: Claim
    lease: timedelta
    lost: threading.Event = field(default_factory=threading.Event)

    def checkpoint(self) -> None:
        """Renew now and raise LeaseLost if another attempt owns the row: call before a side effect."""
        if self.lost.is_set() or not renew(factory=self.factory, claim=self.claim, lease=self.lease):
            self.lost.set()
            raise LeaseLost(f"outbox job {self.claim.outbox_id} lost its lease")


_current: contextvars.ContextVar[Held | None] = contextvars.ContextVar("threadline_job_lease", default=None)


def current() -> Held | None:
    """The lease of the job running in this thread (None outside the runner, e.g. in a unit test)."""
    return _current.get()


def checkpoint() -> None:
    held = current()
    if held is not None:
        held.checkpoint()


@contextmanager
def holding(held: Held) -> Iterator[Held]:
    """Make `held` the lease `checkpoint()` renews while this block runs (one job of a batch)."""
    reset = _current.set(held)
    try:
        yield held
    finally:
        _current.reset(reset)


@contextmanager
def heartbeat(held: Held, *others: Held) -> Iterator[Held]:
    """Renew the leases every third of their length while the block runs (a job may outlive one).

    One thread for a whole batch: it renews every lease in one transaction per beat."""
    everyone = (held, *others)
    stop = threading.Event()
    interval = max(held.lease.total_seconds() / 3, 0.05)

    def beat() -> None:
        while not stop.wait(interval):
            live = [h for h in everyone if not h.lost.is_set()]
            if not live:
                return
            try:
                kept = renew_all(factory=held.factory, claims=[h.claim for h in live], lease=held.lease)
            except Exception as exc:  # database blip: try again next beat, the lease has slack
                log.warning("lease renewal failed", extra={"outbox_id": held.claim.outbox_id, "error": str(exc)})
                continue
            if stop.is_set():  # the jobs finished while this renewal ran: nothing was lost
                return
            for h in live:
                if h.claim.outbox_id not in kept:
                    h.lost.set()
                    log.warning("job lost its lease", extra={"outbox_id": h.claim.outbox_id})

    thread = threading.Thread(target=beat, name=f"lease-{held.claim.outbox_id}", daemon=True)
    thread.start()
    try:
        with holding(held):
            yield held
    finally:
        # No join: on a loaded machine waiting for the thread to wake and exit cost ~5 ms per job
        # (issue 14 profile). A renewal racing with the finish cannot outlive it: renewals match the
        # token, which the finish clears.
        stop.set()


def renew_all(*, factory: sessionmaker[Session], claims: list[Claim], lease: timedelta) -> set[int]:
    """Extend several leases in one transaction; the ids of those still held."""
    kept: set[int] = set()
    with bookkeeping(factory) as session:
        for claim in claims:
            result = session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == claim.outbox_id, OutboxRow.lease_token == claim.token,
                       OutboxRow.status == OutboxStatus.RUNNING)
                .values(lease_until=func.now() + lease)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                kept.add(claim.outbox_id)
    return kept


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, to record on its row."""

    claim: Claim
    status: OutboxStatus
    error: str | None = None
    retry_in: timedelta | None = None


def finish(
    *, factory: sessionmaker[Session], claim: Claim, status: OutboxStatus, error: str | None,
    retry_in: timedelta | None = None,
) -> bool:
    """Record the attempt's outcome if it still owns the row; False = a stale attempt, ignored."""
    return claim.outbox_id in finish_all(factory=factory, outcomes=[Outcome(claim, status, error, retry_in)])


def finish_all(*, factory: sessionmaker[Session], outcomes: list[Outcome]) -> set[int]:
    """Record several outcomes in one transaction (a batch: one commit); the ids recorded (the
    others were stale attempts, ignored)."""
    recorded: set[int] = set()
    with bookkeeping(factory) as session:
        for outcome in outcomes:
            values: dict[str, object] = {"status": outcome.status, "lease_token": None, "lease_until": None}
            if outcome.error is not None:
                values["last_error"] = outcome.error[:4000]
            if outcome.status is OutboxStatus.PENDING:  # retry: the relay sends it again when it is due
                values["available_at"] = func.now() + (outcome.retry_in or timedelta(0))
            else:
                values["finished_at"] = func.now()
            result = session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == outcome.claim.outbox_id, OutboxRow.lease_token == outcome.claim.token)
                .values(**values)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                recorded.add(outcome.claim.outbox_id)
    return recorded
