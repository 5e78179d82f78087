"""Held and failed mail, and dead jobs, through the admin API."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from core.db.session import tenant_scope
from core.jobs.models import OutboxRow, OutboxStatus
from core.runtime import Runtime
from core.tenancy.models import ApiKeyScope, AuditEntry
from core.tickets.held import INGEST_JOB
from core.tickets.models import RawInbound, RawInboundStatus
from tests.admin_api.conftest import Headers
from tests.conftest import make_tenant


def _raw(rt: Runtime, tenant_id: uuid.UUID, *, held: bool, status: RawInboundStatus) -> uuid.UUID:
    with tenant_scope(rt.factory, tenant_id) as session:
        raw = RawInbound(tenant_id=tenant_id, source="smtp", idempotency_key=uuid.uuid4().hex, payload=b"x",
                         status=status, held=held, outcome="automatic mail (Auto-Submitted: auto-replied)",
                         summary={"from": "robot@example.test", "subject": "Out of office"})
        session.add(raw)
        session.flush()
        return raw.id


def _ingest_jobs(rt: Runtime, tenant_id: uuid.UUID) -> list[str]:
    with tenant_scope(rt.factory, tenant_id) as session:
        payloads = session.execute(select(OutboxRow.payload).where(OutboxRow.job == INGEST_JOB)).scalars()
        return [p["raw_id"] for p in payloads]


def test_held_mail_is_listed_and_released_into_the_ingest_queue_once(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    tenant, _ = make_tenant(runtime)
    raw_id = _raw(runtime, tenant.id, held=True, status=RawInboundStatus.IGNORED)
    headers = key_for(tenant.id)
    listed = api.get("/api/v1/held", headers=headers).json()["items"]
    first = api.post(f"/api/v1/held/{raw_id}/release", headers=headers)
    again = api.post(f"/api/v1/held/{raw_id}/release", headers=headers)
    assert ([i["subject"] for i in listed], first.status_code, first.json()["status"], again.status_code) == (
        ["Out of office"], 200, "received", 409)
    assert _ingest_jobs(runtime, tenant.id) == [str(raw_id)]
    with tenant_scope(runtime.factory, tenant.id) as session:
        assert session.execute(select(AuditEntry.action).where(AuditEntry.action == "mail.released")).scalar_one()


def test_failed_mail_is_listed_and_replayed(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    tenant, _ = make_tenant(runtime)
    failed = _raw(runtime, tenant.id, held=False, status=RawInboundStatus.FAILED)
    _raw(runtime, tenant.id, held=False, status=RawInboundStatus.PROCESSED)
    headers = key_for(tenant.id)
    listed = [i["id"] for i in api.get("/api/v1/failed-mail", headers=headers).json()["items"]]
    res = api.post(f"/api/v1/failed-mail/{failed}/replay", headers=headers)
    assert (listed, res.status_code, res.json()["status"]) == ([str(failed)], 202, "received")
    assert _ingest_jobs(runtime, tenant.id) == [str(failed)]


def test_a_read_key_cannot_release_and_another_tenant_gets_404(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    a, _ = make_tenant(runtime)
    b, _ = make_tenant(runtime)
    raw_id = _raw(runtime, a.id, held=True, status=RawInboundStatus.IGNORED)
    assert api.post(f"/api/v1/held/{raw_id}/release", headers=key_for(a.id, ApiKeyScope.READ)).status_code == 403
    assert api.post(f"/api/v1/held/{raw_id}/release", headers=key_for(b.id)).status_code == 404


def test_dead_jobs_are_listed_and_retried_only_by_their_tenant(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    a, _ = make_tenant(runtime)
    b, _ = make_tenant(runtime)
    with tenant_scope(runtime.factory, a.id) as session:
        row = OutboxRow(tenant_id=a.id, job="email.deliver", payload={}, status=OutboxStatus.DEAD, attempts=9,
                        last_error="550 mailbox unavailable")
        session.add(row)
        session.flush()
        job_id = row.id
    headers = key_for(a.id)
    listed = [j["id"] for j in api.get("/api/v1/jobs", headers=headers).json()["items"]]
    foreign = api.post(f"/api/v1/jobs/{job_id}/retry", headers=key_for(b.id)).status_code
    res = api.post(f"/api/v1/jobs/{job_id}/retry", headers=headers)
    assert (listed, foreign, res.status_code, res.json()["status"], res.json()["attempts"]) == (
        [job_id], 404, 200, "pending", 0)
    assert api.post(f"/api/v1/jobs/{job_id}/retry", headers=headers).status_code == 409
