"""The outbox relay: hand committed rows to the queue, each row exactly once.

Two relays may run at once (one per worker process): FOR UPDATE SKIP LOCKED gives each a
disjoint batch. If Redis is down the rows stay pending and drain when it returns. A row handed
to Redis is leased to the queue (`ENQUEUE_LEASE`); if Redis loses the message, the scheduler
sends it again once that lease has expired (`requeue_expired`), never because a row is old.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import system_scope
from core.jobs.lease import ENQUEUE_LEASE
from core.jobs.models import OutboxRow, OutboxStatus

log = logging.getLogger(__name__)

Send = Callable[[OutboxRow], None]


@dataclass(frozen=True)
class RelayPass:
    sent: int
    error: str | None = None


def relay_once(
    *, factory: sessionmaker[Session], send: Send, batch: int = 200, lease: timedelta = ENQUEUE_LEASE
) -> RelayPass:
    with system_scope(factory) as session:
        rows = (
            session.execute(
                select(OutboxRow)
                .where(OutboxRow.status == OutboxStatus.PENDING, OutboxRow.available_at <= func.now())
                .order_by(OutboxRow.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        sent = 0
        for row in rows:
            try:
                send(row)
            except Exception as exc:  # queue unreachable: keep the rest pending, commit what went
                log.warning("outbox relay could not enqueue", extra={"error": f"{type(exc).__name__}: {exc}"})
                return RelayPass(sent, f"{type(exc).__name__}: {exc}")
            row.status = OutboxStatus.ENQUEUED
            row.enqueued_at = datetime.now(timezone.utc)
            row.lease_until = row.enqueued_at + lease
            sent += 1
        return RelayPass(sent)


def requeue_expired(*, factory: sessionmaker[Session]) -> int:
    """Rows whose lease expired (Redis lost the message, or the worker died): pending again.

    Clearing the token fences the old attempt: if it is merely slow, it can no longer record a
    result, and its side effects are guarded by their own idempotency keys.
    """
    with system_scope(factory) as session:
        result = session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.status.in_([OutboxStatus.ENQUEUED, OutboxStatus.RUNNING]),
                OutboxRow.lease_until < func.now(),
            )
            .values(status=OutboxStatus.PENDING, lease_token=None, lease_until=None, available_at=func.now())
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def run_relay(
    *, factory: sessionmaker[Session], send: Send, stop: threading.Event, idle_sleep: float = 0.05
) -> None:
    """Loop until `stop` is set; back off (up to 5 s) while the queue is unreachable."""
    backoff = idle_sleep
    while not stop.is_set():
        try:
            result = relay_once(factory=factory, send=send)
        except Exception as exc:  # database down: wait and try again, never die
            log.warning("outbox relay pass failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            result = RelayPass(0, str(exc))
        if result.error:
            backoff = min(backoff * 2 if backoff > idle_sleep else 0.25, 5.0)
            stop.wait(backoff)
            continue
        backoff = idle_sleep
        if result.sent == 0:
            stop.wait(idle_sleep)
