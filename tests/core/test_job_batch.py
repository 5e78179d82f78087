"""Batched jobs (issue 14): one run of a `batch=True` job also takes waiting rows of the same job,
runs each once under its own lease, and records every outcome; the other deliveries are skipped."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from core.db.session import system_scope
from core.errors import UserError
from core.jobs import lease as leases
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.outbox import enqueue
from core.jobs.runner import JobFailed, RunResult, run_outbox_job
from core.registry import JobContext, Registry
from core.runtime import Runtime
from tests.conftest import make_tenant

JOB = "test.batch"


@pytest.fixture()
def registry() -> Registry:
    return Registry()


def _rows(rt: Runtime, count: int, *, job: str = JOB, tenant_id: uuid.UUID | None = None) -> list[int]:
    tenant_id = tenant_id or make_tenant(rt)[0].id
    with system_scope(rt.factory) as session:
        rows = [enqueue(session=session, tenant_id=tenant_id, job=job, payload={"n": n}) for n in range(count)]
        session.flush()
        return [row.id for row in rows]


def _states(rt: Runtime, ids: list[int]) -> list[OutboxStatus]:
    with system_scope(rt.factory) as session:
        found = dict(session.execute(select(OutboxRow.id, OutboxRow.status).where(OutboxRow.id.in_(ids))).all())
    return [found[i] for i in ids]


def _run(rt: Runtime, outbox_id: int) -> RunResult:
    try:
        return run_outbox_job(outbox_id, settings=rt.settings, factory=rt.factory, registry=rt.registry)
    except JobFailed:
        return RunResult.RETRY


def _batch_job(rt: Runtime, handler: Any) -> None:
    rt.registry.add_job(JOB, handler, batch=True)


def test_one_delivery_runs_every_waiting_row_once_and_the_other_deliveries_are_skipped(runtime: Runtime) -> None:
    """Five waiting rows: the first delivery runs all five in id order; each later delivery does nothing."""
    seen: list[tuple[int, int]] = []
    _batch_job(runtime, lambda ctx, payload: seen.append((ctx.outbox_id, payload["n"])))
    ids = _rows(runtime, 5)
    assert _run(runtime, ids[0]) is RunResult.DONE
    assert [n for _, n in seen] == [0, 1, 2, 3, 4] and [i for i, _ in seen] == ids
    assert [_run(runtime, i) for i in ids] == [RunResult.SKIPPED] * 5
    assert len(seen) == 5 and _states(runtime, ids) == [OutboxStatus.DONE] * 5


def test_a_batch_takes_rows_of_every_tenant_but_no_other_job(runtime: Runtime) -> None:
    """Rows of another tenant join the batch (each runs as its tenant); another job's rows stay waiting."""
    tenants: list[uuid.UUID] = []
    _batch_job(runtime, lambda ctx, payload: tenants.append(ctx.tenant_id))
    runtime.registry.add_job("test.other", lambda ctx, payload: None)
    first, second = make_tenant(runtime)[0].id, make_tenant(runtime)[0].id
    mine = _rows(runtime, 1, tenant_id=first) + _rows(runtime, 1, tenant_id=second)
    other = _rows(runtime, 1, job="test.other", tenant_id=first)
    assert _run(runtime, mine[0]) is RunResult.DONE
    assert tenants == [first, second]
    assert _states(runtime, mine + other) == [OutboxStatus.DONE, OutboxStatus.DONE, OutboxStatus.PENDING]


def test_one_failing_row_is_retried_or_dead_alone(runtime: Runtime) -> None:
    """A row that raises is pending again (or dead on a UserError) with its error; the rest are done."""

    def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        if payload["n"] == 1:
            raise RuntimeError("database blip")
        if payload["n"] == 2:
            raise UserError("no such ticket")

    _batch_job(runtime, handler)
    ids = _rows(runtime, 4)
    assert _run(runtime, ids[0]) is RunResult.DONE
    assert _states(runtime, ids) == [OutboxStatus.DONE, OutboxStatus.PENDING, OutboxStatus.DEAD, OutboxStatus.DONE]
    with system_scope(runtime.factory) as session:
        errors = dict(session.execute(select(OutboxRow.id, OutboxRow.last_error).where(OutboxRow.id.in_(ids))).all())
    assert "database blip" in (errors[ids[1]] or "") and "no such ticket" in (errors[ids[2]] or "")


def test_the_asked_for_row_failing_raises_for_it_and_the_others_are_still_recorded(runtime: Runtime) -> None:
    def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        if payload["n"] == 0:
            raise RuntimeError("first one fails")

    _batch_job(runtime, handler)
    ids = _rows(runtime, 3)
    with pytest.raises(JobFailed):
        run_outbox_job(ids[0], settings=runtime.settings, factory=runtime.factory, registry=runtime.registry)
    assert _states(runtime, ids) == [OutboxStatus.PENDING, OutboxStatus.DONE, OutboxStatus.DONE]


def test_a_batch_is_bounded_and_skips_rows_not_due_or_leased(runtime: Runtime) -> None:
    """THREADLINE_JOB_BATCH caps one run; a row waiting for its retry time or held by a live
    attempt is left alone."""
    runtime.settings.job_batch = 3
    ran: list[int] = []
    _batch_job(runtime, lambda ctx, payload: ran.append(payload["n"]))
    ids = _rows(runtime, 6)
    held = leases.claim(factory=runtime.factory, outbox_id=ids[1], lease=timedelta(minutes=5))
    assert held is not None
    with system_scope(runtime.factory) as session:
        session.execute(update(OutboxRow).where(OutboxRow.id == ids[2])
                        .values(available_at=OutboxRow.available_at + timedelta(hours=1)))
    assert _run(runtime, ids[0]) is RunResult.DONE
    assert ran == [0, 3, 4]
    assert _states(runtime, ids)[1:3] == [OutboxStatus.RUNNING, OutboxStatus.PENDING]
    assert _states(runtime, ids)[5] == OutboxStatus.PENDING


def test_job_batch_1_runs_one_row_at_a_time(runtime: Runtime) -> None:
    runtime.settings.job_batch = 1
    ran: list[int] = []
    _batch_job(runtime, lambda ctx, payload: ran.append(payload["n"]))
    ids = _rows(runtime, 3)
    assert _run(runtime, ids[0]) is RunResult.DONE
    assert ran == [0] and _states(runtime, ids) == [OutboxStatus.DONE, OutboxStatus.PENDING, OutboxStatus.PENDING]


def test_a_row_taken_over_mid_batch_is_not_recorded_by_the_stale_batch(runtime: Runtime) -> None:
    """The lease of a later row expires and another attempt takes it while the batch works: the
    batch neither runs it nor overwrites the new attempt's result."""
    ids: list[int] = []

    def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        if payload["n"] == 0:  # meanwhile: row 1's lease passes and a requeue + new claim take it
            with system_scope(runtime.factory) as session:
                session.execute(update(OutboxRow).where(OutboxRow.id == ids[1])
                                .values(status=OutboxStatus.PENDING, lease_token=None, lease_until=None))
            assert leases.claim(factory=runtime.factory, outbox_id=ids[1], lease=timedelta(minutes=5)) is not None

    _batch_job(runtime, handler)
    ids.extend(_rows(runtime, 3))
    assert _run(runtime, ids[0]) is RunResult.DONE
    # The stale batch may still run row 1 (every job is idempotent), but it never records a result for it.
    assert _states(runtime, ids) == [OutboxStatus.DONE, OutboxStatus.RUNNING, OutboxStatus.DONE]
