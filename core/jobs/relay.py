"""The outbox relay: hand committed rows to the queue, each row exactly once.

Two relays may run at once (one per worker process): FOR UPDATE SKIP LOCKED gives each a
disjoint batch. If Redis is down the rows stay pending and drain when it returns. A row handed
to Redis is leased to the queue (`ENQUEUE_LEASE`); if Redis loses the message, the scheduler
sends it again once that lease has expired (`requeue_expired`), never because a row is old.

Idle, the relay does not poll fast: it LISTENs on `OUTBOX_CHANNEL` (core.jobs.outbox.enqueue
NOTIFYs it in the inserting transaction, so the wake-up comes at commit) and otherwise waits
until the next delayed row is due, or at most `fallback_poll` seconds for rows that became
pending without a notification (a lost listener). Everything that makes a row pending NOTIFYs
through `wake_relay`: inserts, the scheduler's requeue and `jobs retry`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import system_scope
from core.jobs.lease import ENQUEUE_LEASE, bookkeeping
from core.jobs.models import OutboxRow, OutboxStatus

log = logging.getLogger(__name__)

Send = Callable[[OutboxRow], None]

OUTBOX_CHANNEL = "threadline_outbox"
FALLBACK_POLL_SECONDS = 2.0
_STOP_SLICE = 0.5  # longest wait between looks at `stop` while listening


def wake_relay(session: Session) -> None:
    """NOTIFY the idle relays; Postgres delivers it when this transaction commits, never on rollback."""
    # No autoflush: the caller's pending objects are flushed when they would have been anyway.
    with session.no_autoflush:
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": OUTBOX_CHANNEL})


@dataclass(frozen=True)
class RelayPass:
    sent: int
    error: str | None = None
    next_due: float | None = None  # seconds until the earliest delayed pending row (when the batch was not full)


def relay_once(
    *, factory: sessionmaker[Session], send: Send, batch: int = 200, lease: timedelta = ENQUEUE_LEASE
) -> RelayPass:
    # Bookkeeping commit (no WAL flush wait): a pass lost in a Postgres crash leaves its rows pending,
    # sent again; their second message is skipped at claim.
    with bookkeeping(factory) as session:
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
            row.enqueued_at = datetime.now(UTC)
            row.lease_until = row.enqueued_at + lease
            sent += 1
        if len(rows) == batch:
            return RelayPass(sent)
        due = session.execute(
            select(func.extract("epoch", func.min(OutboxRow.available_at) - func.now()))
            .where(OutboxRow.status == OutboxStatus.PENDING)
        ).scalar_one_or_none()
        return RelayPass(sent, next_due=None if due is None else max(0.0, float(due)))


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
        requeued = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if requeued:
            wake_relay(session)  # run them now, not at the relay's fallback poll
        return requeued


class Listener:
    """A dedicated autocommit connection LISTENing on the outbox channel; waits end early on a NOTIFY.

    Any failure (database restarted, connection lost) closes it; the next wait reconnects, and in
    between the relay falls back to plain sleeping, so a dead listener only costs latency.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Any = None

    def _connect(self) -> Any:
        if self._conn is None:
            raw = self._engine.raw_connection()
            conn: Any = raw.driver_connection
            raw.detach()  # ours for good: not returned to the pool with a LISTEN on it
            conn.autocommit = True
            conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
            self._conn = conn
        return self._conn

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Until a notification (True), `seconds` passed or `stop` is set (False)."""
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                conn = self._connect()
                for _ in conn.notifies(timeout=min(left, _STOP_SLICE), stop_after=1):
                    return True
            except Exception as exc:  # database gone: sleep the rest, reconnect next time
                log.debug("outbox listener lost", extra={"error": f"{type(exc).__name__}: {exc}"})
                self.close()
                stop.wait(max(0.0, deadline - time.monotonic()))
                return False
        return False

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken
                pass


def run_relay(
    *, factory: sessionmaker[Session], send: Send, stop: threading.Event, fallback_poll: float = FALLBACK_POLL_SECONDS,
    listen: bool = True,
) -> None:
    """Loop until `stop` is set; back off (up to 5 s) while the queue is unreachable.

    Idle it sleeps until a NOTIFY, the next delayed row's time, or `fallback_poll` seconds;
    `listen=False` sleeps without LISTEN (then `fallback_poll` is the latency)."""
    engine = factory.kw["bind"]
    listener = Listener(engine) if listen and engine is not None else None
    backoff = 0.0
    try:
        while not stop.is_set():
            try:
                result = relay_once(factory=factory, send=send)
            except Exception as exc:  # database down: wait and try again, never die
                log.warning("outbox relay pass failed", extra={"error": f"{type(exc).__name__}: {exc}"})
                result = RelayPass(0, str(exc))
            if result.error:
                backoff = min(backoff * 2 if backoff else 0.25, 5.0)
                stop.wait(backoff)
                continue
            backoff = 0.0
            if result.sent and result.next_due is None:
                continue  # a full batch: there may be more
            wait = fallback_poll if result.next_due is None else min(fallback_poll, result.next_due)
            if wait <= 0:
                continue
            if listener is not None:
                listener.wait(wait, stop)
            else:
                stop.wait(wait)
    finally:
        if listener is not None:
            listener.close()
