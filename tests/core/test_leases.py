"""Leased outbox jobs: no open transaction while a job works, one run at a time, requeue by lease."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from core.db.session import system_scope
from core.jobs import lease as leases
from core.jobs.admin import retry_jobs
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.relay import relay_once, requeue_expired
from core.jobs.runner import JobFailed, RunResult, run_outbox_job
from core.registry import JobContext, Registry
from core.runtime import Runtime
from core.tickets.events import EventKind
from tests.conftest import make_tenant
from tests.core.factories import make_ticket

SHORT = timedelta(milliseconds=400)


@pytest.fixture()
def registry() -> Registry:
    return Registry()


def _row(rt: Runtime) -> OutboxRow:
    with system_scope(rt.factory) as session:
        return session.execute(select(OutboxRow)).scalar_one()


def _one_job(rt: Runtime, handler: Any) -> int:
    rt.registry.add_job("test.job", handler)
    rt.registry.subscribe(EventKind.TICKET_OPENED, "test.job")
    tenant, inbox = make_tenant(rt)
    make_ticket(rt, tenant_id=tenant.id, inbox_id=inbox.id)
    return _row(rt).id


def _run(rt: Runtime, outbox_id: int, lease: timedelta = SHORT) -> RunResult:
    try:
        return run_outbox_job(outbox_id, settings=rt.settings, factory=rt.factory, registry=rt.registry, lease=lease)
    except JobFailed:
        return RunResult.RETRY


def test_a_running_job_holds_no_transaction_and_no_row_lock(runtime: Runtime) -> None:
    """While the handler works, another session can update the row without waiting."""
    seen: list[tuple[str, str]] = []

    def job(ctx: JobContext, payload: dict[str, Any]) -> None:
        with runtime.engine.connect() as conn:
            conn.execute(text("SET ROLE threadline_system"))  # the runtime login alone reads no table
            conn.execute(text("SET lock_timeout = '200ms'"))
            conn.execute(update(OutboxRow).where(OutboxRow.id == ctx.outbox_id).values(last_error="touched"))
            conn.rollback()
            states = conn.execute(text(
                "SELECT state, coalesce(backend_xid::text, '') FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in%'"
            )).all()
            seen.extend((s, x) for s, x in states)
        with system_scope(runtime.factory) as session:
            row = session.get_one(OutboxRow, ctx.outbox_id)
            seen.append((row.status.value, "lease" if row.lease_until else "no lease"))

    outbox_id = _one_job(runtime, job)
    assert _run(runtime, outbox_id) is RunResult.DONE
    assert seen == [("running", "lease")]  # no idle-in-transaction session during the job


def test_a_job_that_outlives_its_lease_is_not_run_twice_at_the_same_time(runtime: Runtime) -> None:
    """The heartbeat keeps the lease while the scheduler and duplicate deliveries keep trying."""
    active, most, runs = [0], [0], [0]
    guard = threading.Lock()

    def slow(ctx: JobContext, payload: dict[str, Any]) -> None:
        with guard:
            active[0] += 1
            runs[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(SHORT.total_seconds() * 5)  # five leases long
        with guard:
            active[0] -= 1

    outbox_id = _one_job(runtime, slow)
    stop = threading.Event()
    results: list[RunResult] = []

    def scheduler() -> None:
        while not stop.is_set():
            requeue_expired(factory=runtime.factory)
            stop.wait(0.02)

    def duplicate_deliveries() -> None:  # dramatiq redelivery, the relay re-sending a requeued row
        while not stop.is_set():
            results.append(_run(runtime, outbox_id))
            stop.wait(0.05)

    helpers = [threading.Thread(target=scheduler), threading.Thread(target=duplicate_deliveries)]
    first = threading.Thread(target=lambda: results.append(_run(runtime, outbox_id)))
    first.start()
    time.sleep(0.05)
    for t in helpers:
        t.start()
    first.join(timeout=30)
    stop.set()
    for t in helpers:
        t.join()
    assert (runs[0], most[0]) == (1, 1)
    assert results.count(RunResult.DONE) == 1 and set(results) <= {RunResult.DONE, RunResult.SKIPPED}
    assert _row(runtime).status is OutboxStatus.DONE


def test_a_stale_worker_whose_lease_expired_cannot_record_its_result(runtime: Runtime) -> None:
    """A worker that stalls past its lease (no heartbeat) loses the row to the next attempt."""
    outbox_id = _one_job(runtime, lambda ctx, payload: None)
    claim = leases.claim(factory=runtime.factory, outbox_id=outbox_id, lease=SHORT)
    assert claim is not None
    time.sleep(SHORT.total_seconds() + 0.1)  # a frozen process: no renewals
    assert requeue_expired(factory=runtime.factory) == 1
    assert _run(runtime, outbox_id) is RunResult.DONE
    assert not leases.finish(factory=runtime.factory, claim=claim, status=OutboxStatus.DEAD, error="stale")
    assert not leases.renew(factory=runtime.factory, claim=claim, lease=SHORT)
    row = _row(runtime)
    assert (row.status, row.last_error) == (OutboxStatus.DONE, None)


def test_a_lost_lease_stops_the_job_at_its_next_checkpoint(runtime: Runtime) -> None:
    """`lease.checkpoint()` before a side effect refuses to go on once another attempt owns the row."""
    effects: list[int] = []

    def job(ctx: JobContext, payload: dict[str, Any]) -> None:
        with system_scope(runtime.factory) as session:  # the scheduler requeued the row meanwhile
            session.execute(update(OutboxRow).where(OutboxRow.id == ctx.outbox_id)
                            .values(status=OutboxStatus.PENDING, lease_token=None, lease_until=None))
        leases.checkpoint()
        effects.append(ctx.attempt)

    outbox_id = _one_job(runtime, job)
    assert _run(runtime, outbox_id) is RunResult.STALE
    assert effects == []
    assert _row(runtime).status is OutboxStatus.PENDING


def test_requeue_is_by_expired_lease_never_by_age(runtime: Runtime) -> None:
    """An old row with a live lease stays put; a young row whose lease expired is sent again."""
    outbox_id = _one_job(runtime, lambda ctx, payload: None)
    sent: list[int] = []
    assert relay_once(factory=runtime.factory, send=lambda r: sent.append(r.id), lease=timedelta(hours=1)).sent == 1
    with system_scope(runtime.factory) as session:
        session.execute(update(OutboxRow).values(enqueued_at=text("now() - interval '3 days'"),
                                                 created_at=text("now() - interval '3 days'")))
    assert requeue_expired(factory=runtime.factory) == 0
    with system_scope(runtime.factory) as session:
        session.execute(update(OutboxRow).values(lease_until=text("now() - interval '1 second'")))
    assert requeue_expired(factory=runtime.factory) == 1
    assert _row(runtime).status is OutboxStatus.PENDING
    assert relay_once(factory=runtime.factory, send=lambda r: sent.append(r.id)).sent == 1
    assert sent == [outbox_id, outbox_id]


def test_a_failed_attempt_retries_through_the_outbox_with_a_backoff(runtime: Runtime) -> None:
    """One retry chain: the row is pending again with `available_at` later, dramatiq never retries."""

    def failing(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise ConnectionError("slack unreachable")

    outbox_id = _one_job(runtime, failing)
    assert _run(runtime, outbox_id) is RunResult.RETRY
    row = _row(runtime)
    assert (row.status, row.attempts, row.lease_token) == (OutboxStatus.PENDING, 1, None)
    assert row.available_at > row.created_at
    assert row.last_error == "ConnectionError: slack unreachable"


def test_an_operator_retry_leaves_a_row_a_live_worker_holds(runtime: Runtime) -> None:
    outbox_id = _one_job(runtime, lambda ctx, payload: None)
    assert leases.claim(factory=runtime.factory, outbox_id=outbox_id, lease=timedelta(minutes=5)) is not None
    assert retry_jobs(factory=runtime.factory, ids=[outbox_id]) == 0
    assert _row(runtime).status is OutboxStatus.RUNNING
