"""Batched ingest (issue 14): one `ingest.process` delivery processes the mails waiting behind it,
each in its own transaction: a bad mail fails alone, a worker killed mid-batch loses nothing and
doubles nothing, and the dramatiq messages of mails already done do nothing."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.db.session import system_scope
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.relay import requeue_expired
from core.jobs.runner import RunResult, run_outbox_job
from core.runtime import Runtime
from core.tickets.models import Message, RawInbound, RawInboundStatus
from inbound.ingest.accept import PROCESS_JOB, accept_raw, content_key
from tests.conftest import make_tenant
from tests.inbound.ingest.batch_fault_worker import LEASE
from tests.inbound.ingest.helpers import mail

ADDRESS = "help@acme.test"


@pytest.fixture()
def inbox(runtime: Runtime) -> tuple[uuid.UUID, uuid.UUID]:
    tenant, box = make_tenant(runtime, address=ADDRESS)
    return tenant.id, box.id


def _accept(rt: Runtime, inbox: tuple[uuid.UUID, uuid.UUID], payloads: list[bytes]) -> list[int]:
    """Accepted as SMTP does (raw bytes + `ingest.process` row); the outbox ids in order."""
    tenant_id, inbox_id = inbox
    raw_ids = [
        str(accept_raw(rt.factory, tenant_id=tenant_id, inbox_id=inbox_id, source="smtp", payload=p,
                       idempotency_key=content_key("test", p), envelope={"rcpt_tos": [ADDRESS]}).raw_id)
        for p in payloads
    ]
    with system_scope(rt.factory) as session:
        job_of = {r.payload["raw_id"]: r.id for r in session.execute(
            select(OutboxRow).where(OutboxRow.job == PROCESS_JOB)).scalars()}
    return [job_of[r] for r in raw_ids]


def _run(rt: Runtime, outbox_id: int) -> RunResult:
    return run_outbox_job(outbox_id, settings=rt.settings, factory=rt.factory, registry=rt.registry)


def _raws(rt: Runtime) -> list[tuple[RawInboundStatus, int]]:
    """Per raw record in arrival order: its status and how many messages were written from it."""
    with system_scope(rt.factory) as session:
        written = (select(func.count()).select_from(Message)
                   .where(Message.raw_inbound_id == RawInbound.id).scalar_subquery())
        return [(status, n) for status, n in session.execute(
            select(RawInbound.status, written).order_by(RawInbound.received_at, RawInbound.id))]


def _ingest_rows(rt: Runtime) -> list[OutboxStatus]:
    with system_scope(rt.factory) as session:
        return list(session.execute(select(OutboxRow.status).where(OutboxRow.job == PROCESS_JOB)
                                    .order_by(OutboxRow.id)).scalars())


def test_a_bad_mail_in_a_batch_fails_alone(runtime: Runtime, inbox: tuple[uuid.UUID, uuid.UUID]) -> None:
    """Bytes with no header among good mails: that raw record is failed and kept, the others are
    written, and every job row of the batch is done after one delivery."""
    payloads = [mail(subject=f"good {i}", sender=f"c{i}@customer.test") for i in range(4)]
    payloads.insert(2, b"\x00\x01\x02 not a mail at all \xff" * 3)
    ids = _accept(runtime, inbox, payloads)
    assert _run(runtime, ids[0]) is RunResult.DONE
    processed = (RawInboundStatus.PROCESSED, 1)
    assert _raws(runtime) == [processed, processed, (RawInboundStatus.FAILED, 0), processed, processed]
    assert _ingest_rows(runtime) == [OutboxStatus.DONE] * 5


def test_a_duplicate_delivery_of_a_done_row_does_nothing(
    runtime: Runtime, inbox: tuple[uuid.UUID, uuid.UUID]
) -> None:
    ids = _accept(runtime, inbox, [mail(sender=f"c{i}@customer.test") for i in range(3)])
    assert _run(runtime, ids[0]) is RunResult.DONE
    before = _raws(runtime)
    assert [_run(runtime, i) for i in [*ids, *ids]] == [RunResult.SKIPPED] * 6
    assert _raws(runtime) == before == [(RawInboundStatus.PROCESSED, 1)] * 3


@pytest.mark.slow
def test_a_worker_killed_mid_batch_leaves_every_mail_processed_exactly_once(
    runtime: Runtime, inbox: tuple[uuid.UUID, uuid.UUID], tmp_path: Path
) -> None:
    """SIGKILL right after the third of six mails committed (no outcome recorded): once the leases
    expire and the rows are requeued, a new worker finishes the batch; one message per mail."""
    ids = _accept(runtime, inbox, [mail(subject=f"m{i}", sender=f"c{i}@customer.test") for i in range(6)])
    settings_file = tmp_path / "settings.pickle"
    settings_file.write_bytes(pickle.dumps(runtime.settings))
    url = runtime.engine.url.render_as_string(hide_password=False)
    killed = subprocess.run([sys.executable, "-m", "tests.inbound.ingest.batch_fault_worker", str(settings_file),
                             url, str(ids[0]), "3"], timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert [n for _, n in _raws(runtime)] == [1, 1, 1, 0, 0, 0]
    assert _ingest_rows(runtime) == [OutboxStatus.RUNNING] * 6  # all leased to the dead batch
    time.sleep(LEASE.total_seconds() + 0.1)
    assert requeue_expired(factory=runtime.factory) == 6
    assert _run(runtime, ids[0]) is RunResult.DONE
    assert _raws(runtime) == [(RawInboundStatus.PROCESSED, 1)] * 6
    assert _ingest_rows(runtime) == [OutboxStatus.DONE] * 6
