"""Run pending outbox jobs in the test's thread through the real runner (no queue needed)."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db.session import system_scope
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.runner import JobFailed, RunResult, run_outbox_job
from core.runtime import Runtime


def drain_jobs(
    runtime: Runtime, *, rounds: int = 5, only: set[str] | None = None, include_delayed: bool = False
) -> list[RunResult]:
    """Run every due pending job (and the jobs they create), a few rounds deep.
    `include_delayed` also runs jobs whose time has not come (e.g. replies inside the undo window)."""
    results: list[RunResult] = []
    for _ in range(rounds):
        with system_scope(runtime.factory) as session:
            stmt = select(OutboxRow.id, OutboxRow.job).where(OutboxRow.status == OutboxStatus.PENDING)
            if not include_delayed:
                stmt = stmt.where(OutboxRow.available_at <= func.now())
            rows = session.execute(stmt.order_by(OutboxRow.id)).all()
        rows = [r for r in rows if only is None or r.job in only]
        if not rows:
            break
        for row_id, _job in rows:
            try:
                results.append(
                    run_outbox_job(
                        row_id, settings=runtime.settings, factory=runtime.factory, registry=runtime.registry
                    )
                )
            except JobFailed:
                results.append(RunResult.RETRY)
        if all(r is RunResult.RETRY for r in results[-len(rows) :]):
            break
    return results
