"""A public reply with files (core/tickets/replies.py + core/attachments/files.py), mailed for real."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from core.attachments.files import StoredFile
from core.blobs import BlobStore
from core.db.session import system_scope, tenant_scope
from core.jobs.models import OutboxRow
from core.runtime import Runtime
from core.settings import Settings
from core.tickets import replies, service
from core.tickets.models import ActorKind, Attachment
from core.tickets.schemas import Actor
from tests.conftest import make_tenant
from tests.core.factories import make_ticket
from tests.support.jobs import drain_jobs
from tests.support.smtp_sink import SmtpSink, smtp_sink  # noqa: F401 (fixture)

AGENT = Actor(ActorKind.AGENT, "agent-1", "Alice")
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


@pytest.fixture()
def settings(tmp_path: Path, smtp_sink: SmtpSink) -> Settings:  # noqa: F811
    return Settings(THREADLINE_DATA_DIR=tmp_path, THREADLINE_JOB_MIN_BACKOFF_MS=10, THREADLINE_JOB_MAX_RETRIES=2,
                    THREADLINE_OUTBOUND_SMTP_URL=smtp_sink.url)


def _reply(rt: Runtime, *, deliver: bool) -> tuple[uuid.UUID, uuid.UUID]:
    tenant, inbox = make_tenant(rt)
    ticket_id, _ = make_ticket(rt, tenant_id=tenant.id, inbox_id=inbox.id)
    sha = BlobStore.from_settings(rt.settings).put(PDF)
    file = StoredFile(sha, "Rechnung März.pdf", "application/pdf", len(PDF))
    with tenant_scope(rt.factory, tenant.id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        out = replies.send_public_reply(session=session, registry=rt.registry, ticket=ticket, text="See attached.",
                                        actor=AGENT, files=[file, file], deliver=deliver)
    return tenant.id, out.value.id


def test_a_reply_with_a_file_reaches_the_customer_with_the_exact_bytes(runtime: Runtime, smtp_sink: SmtpSink) -> None:  # noqa: F811
    tenant_id, message_id = _reply(runtime, deliver=True)
    drain_jobs(runtime, include_delayed=True)
    (mail,) = smtp_sink.wait_for(1)
    (part,) = list(mail.message.iter_attachments())
    assert (part.get_filename(), part.get_content_type(), part.get_content()) == (
        "Rechnung März.pdf", "application/pdf", PDF)
    with tenant_scope(runtime.factory, tenant_id) as session:  # the same file twice is attached once
        assert session.execute(select(Attachment.filename).where(Attachment.message_id == message_id)).scalars().all() \
            == ["Rechnung März.pdf"]


def test_a_reply_stored_without_delivery_waits_until_its_delivery_is_scheduled(
    runtime: Runtime, smtp_sink: SmtpSink,  # noqa: F811
) -> None:
    tenant_id, message_id = _reply(runtime, deliver=False)
    drain_jobs(runtime, include_delayed=True)
    with system_scope(runtime.factory) as session:
        assert session.execute(select(OutboxRow.job).where(OutboxRow.job == "email.deliver")).first() is None
    with tenant_scope(runtime.factory, tenant_id) as session:
        message = replies.lock_message(session=session, message_id=message_id)
        replies.schedule_delivery(session=session, registry=runtime.registry, message=message, delay_seconds=0)
    drain_jobs(runtime)
    (mail,) = smtp_sink.wait_for(1)
    assert [p.get_content() for p in mail.message.iter_attachments()] == [PDF]
