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

from sqlalchemy import func, or_, update
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import system_scope
from core.jobs.models import OutboxRow, OutboxStatus

log = logging.getLogger(__name__)

# Longer than one SMTP session (30 s timeout); an LLM call (120 s) is covered by renewals.
DEFAULT_LEASE = timedelta(seconds=60)
# A row handed to Redis is leased to the queue this long; lost messages come back after it.
ENQUEUE_LEASE = timedelta(minutes=15)


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
    with system_scope(factory) as session:
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


def renew(*, factory: sessionmaker[Session], claim: Claim, lease: timedelta) -> bool:
    """Extend the lease; False when it was lost (requeued, or finished by someone else)."""
    with system_scope(factory) as session:
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
def heartbeat(held: Held) -> Iterator[Held]:
    """Renew the lease every third of its length while the block runs (a job may outlive it)."""
    stop = threading.Event()
    interval = max(held.lease.total_seconds() / 3, 0.05)

    def beat() -> None:
        while not stop.wait(interval):
            try:
                if not renew(factory=held.factory, claim=held.claim, lease=held.lease):
                    held.lost.set()
                    log.warning("job lost its lease", extra={"outbox_id": held.claim.outbox_id})
                    return
            except Exception as exc:  # database blip: try again next beat, the lease has slack
                log.warning("lease renewal failed", extra={"outbox_id": held.claim.outbox_id, "error": str(exc)})

    thread = threading.Thread(target=beat, name=f"lease-{held.claim.outbox_id}", daemon=True)
    reset = _current.set(held)
    thread.start()
    try:
        yield held
    finally:
        stop.set()
        thread.join(timeout=5)
        _current.reset(reset)


def finish(
    *, factory: sessionmaker[Session], claim: Claim, status: OutboxStatus, error: str | None,
    retry_in: timedelta | None = None,
) -> bool:
    """Record the attempt's outcome if it still owns the row; False = a stale attempt, ignored."""
    values: dict[str, object] = {"status": status, "lease_token": None, "lease_until": None}
    if error is not None:
        values["last_error"] = error[:4000]
    if status is OutboxStatus.PENDING:  # retry: the relay sends it again when it is due
        values["available_at"] = func.now() + (retry_in or timedelta(0))
    else:
        values["finished_at"] = func.now()
    with system_scope(factory) as session:
        result = session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == claim.outbox_id, OutboxRow.lease_token == claim.token)
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
