"""Retention removes what is due and nothing else."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from core.blobs import BlobStore
from core.db.session import system_scope, tenant_scope
from core.jobs.models import OutboxRow, OutboxStatus
from core.retention.service import run_retention
from core.runtime import Runtime
from core.surfaces.models import SeenEvent
from core.tickets.models import Attachment, Message, RawInbound, RawInboundStatus
from tests.conftest import make_tenant
from tests.core.factories import make_ticket

NOW = datetime(2030, 6, 1, tzinfo=UTC)
OLD, RECENT = NOW - timedelta(days=400), NOW - timedelta(days=1)


def _raw(tenant_id: uuid.UUID, name: str, status: RawInboundStatus, at: datetime, *, held: bool = False) -> RawInbound:
    return RawInbound(tenant_id=tenant_id, source="smtp", idempotency_key=name, payload=name.encode(), envelope={},
                      status=status, received_at=at, held=held, summary={}, surface_refs={})


def test_retention_removes_what_is_due_and_nothing_else(runtime: Runtime) -> None:
    s = runtime.settings
    s.retain_raw_days, s.retain_failed_raw_days, s.retain_outbox_days = 30, 500, 7
    s.retain_seen_events_days, s.retain_orphan_blob_days = 3, 7
    tenant, inbox = make_tenant(runtime)
    with system_scope(runtime.factory) as session:
        session.add_all([
            _raw(tenant.id, "old-processed", RawInboundStatus.PROCESSED, OLD),
            _raw(tenant.id, "recent-processed", RawInboundStatus.PROCESSED, RECENT),
            _raw(tenant.id, "old-received", RawInboundStatus.RECEIVED, OLD),  # still to process
            _raw(tenant.id, "old-failed", RawInboundStatus.FAILED, OLD),  # younger than its own 500 days
            _raw(tenant.id, "old-held", RawInboundStatus.IGNORED, OLD, held=True),
            _raw(tenant.id, "ancient-failed", RawInboundStatus.FAILED, NOW - timedelta(days=600)),
        ])
        for job, status, at in [("old-done", OutboxStatus.DONE, OLD), ("new-done", OutboxStatus.DONE, RECENT),
                                ("old-dead", OutboxStatus.DEAD, OLD)]:
            session.add(OutboxRow(tenant_id=tenant.id, job=job, payload={}, status=status, finished_at=at))
        session.add_all([SeenEvent(surface="slack", event_id="old", created_at=OLD),
                         SeenEvent(surface="slack", event_id="new", created_at=RECENT)])
    store = BlobStore.from_settings(s)
    orphan_old, kept_old, orphan_new = store.put(b"orphan old"), store.put(b"named old"), store.put(b"orphan new")
    for sha in (orphan_old, kept_old):
        os.utime(store.path(sha), (OLD.timestamp(), OLD.timestamp()))
    os.utime(store.path(orphan_new), (RECENT.timestamp(), RECENT.timestamp()))
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    with tenant_scope(runtime.factory, tenant.id) as session:  # the system role writes no ticket content
        message_id = session.execute(select(Message.id).where(Message.ticket_id == ticket_id)).scalar_one()
        session.add(Attachment(tenant_id=tenant.id, message_id=message_id, filename="a.txt", content_type="text/plain",
                               size=9, sha256=kept_old))

    report = run_retention(runtime.factory, s, now=NOW)

    with system_scope(runtime.factory) as session:
        raws = set(session.execute(select(RawInbound.idempotency_key)).scalars())
        jobs = set(session.execute(select(OutboxRow.job)).scalars())
        seen = set(session.execute(select(SeenEvent.event_id)).scalars())
        assert session.execute(select(func.count()).select_from(Attachment)).scalar_one() == 1
    assert raws == {"recent-processed", "old-received", "old-failed", "old-held"}
    assert "old-done" not in jobs and {"new-done", "old-dead"} <= jobs
    assert seen == {"new"}
    assert (store.path(orphan_old).exists(), store.path(kept_old).exists(), store.path(orphan_new).exists()) == (
        False, True, True)
    assert (report.raw, report.seen_events, report.blobs) == (2, 1, 1)
