"""Background jobs of the tenant: list (dead letters by default) and retry."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict

from admin_api.auth import TenantPrincipalDep, audit_context
from admin_api.conventions import admin_router
from admin_api.deps import RuntimeDep, SessionDep
from admin_api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, paginate
from admin_api.params import JobId
from core.errors import Conflict
from core.jobs import admin as jobs_admin
from core.jobs import listing
from core.jobs.models import OutboxStatus
from core.tenancy import audit as audit_log

router = admin_router("jobs")


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    job: str
    status: OutboxStatus
    attempts: int
    last_error: str | None
    payload: dict[str, Any]
    ticket_id: uuid.UUID | None
    created_at: datetime
    available_at: datetime
    finished_at: datetime | None


@router.get("/jobs", response_model=Page[JobPublic])
def list_jobs(request: Request, response: Response, session: SessionDep,
              status: Annotated[OutboxStatus | None, Query(description="default: dead")] = OutboxStatus.DEAD,
              job: Annotated[str | None, Query(max_length=100, description="job name, e.g. `email.deliver`")] = None,
              cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT) -> Page[JobPublic]:
    rows = listing.list_jobs(session=session, status=status, job=job, after=decode_cursor(cursor, id_type=int),
                             limit=limit + 1)
    return paginate(request, response, rows, limit=limit, to_public=JobPublic.model_validate)


@router.post("/jobs/{job_id}/retry", response_model=JobPublic)
def retry(job_id: JobId, request: Request, session: SessionDep, principal: TenantPrincipalDep,
          runtime: RuntimeDep) -> JobPublic:
    """Run a dead job again with a fresh retry budget; 409 unless it is dead."""
    row = listing.get_job(session=session, job_id=job_id)  # RLS: another tenant's job is a 404
    if row.status is not OutboxStatus.DEAD:
        raise Conflict(f"job {job_id} is {row.status.value}, not dead")
    if jobs_admin.retry_jobs(factory=runtime.factory, ids=[job_id]) != 1:
        raise Conflict(f"job {job_id} changed meanwhile; list it again")
    audit_log.record(session=session, tenant_id=principal.require_tenant(), audit=audit_context(request, principal),
                     action="job.retried", target=f"job:{job_id}", data={"job": row.job})
    session.refresh(row)
    return JobPublic.model_validate(row)
