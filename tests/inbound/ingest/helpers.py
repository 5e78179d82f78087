"""Build mails and push them through accept → process, as SMTP would."""

from __future__ import annotations

import uuid
from email import policy
from email.message import EmailMessage

from sqlalchemy import select

from core.blobs import BlobStore
from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.models import Inbox
from core.tickets.models import Message, RawInbound, Ticket
from inbound.ingest.accept import accept_raw, content_key
from inbound.ingest.pipeline import IngestDeps, ProcessResult, process_raw


def mail(
    *,
    subject: str = "Backup fails",
    sender: str = "bob@customer.test",
    to: str = "help@acme.test",
    body: str = "restic says the repository is locked",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@customer.test>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes(policy=policy.SMTP)


def deliver(
    rt: Runtime, raw: bytes, *, to: str = "help@acme.test", mail_from: str = "", peer: str | None = None
) -> ProcessResult:
    with system_scope(rt.factory) as session:
        inbox = session.execute(select(Inbox).where(Inbox.address == to)).scalar_one()
        tenant_id, inbox_id = inbox.tenant_id, inbox.id
    accepted = accept_raw(
        rt.factory, tenant_id=tenant_id, inbox_id=inbox_id, source="smtp", payload=raw,
        idempotency_key=content_key("test", str(inbox_id), raw), envelope={"rcpt_tos": [to], "mail_from": mail_from, **({"peer": peer} if peer else {})},
        process=False,
    )
    deps = IngestDeps(rt.settings, rt.factory, rt.registry, BlobStore.from_settings(rt.settings))
    return process_raw(deps, tenant_id=tenant_id, raw_id=accepted.raw_id)


def tickets(rt: Runtime) -> list[Ticket]:
    with system_scope(rt.factory) as session:
        return list(session.execute(select(Ticket).order_by(Ticket.number)).scalars())


def messages(rt: Runtime) -> list[Message]:
    with system_scope(rt.factory) as session:
        return list(session.execute(select(Message).order_by(Message.created_at)).scalars())


def raw_records(rt: Runtime) -> list[RawInbound]:
    with system_scope(rt.factory) as session:
        return list(session.execute(select(RawInbound).order_by(RawInbound.received_at)).scalars())
