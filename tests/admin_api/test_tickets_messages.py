"""A ticket's raw mail and attachments through the admin API: exact bytes, safe download headers."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from admin_api.routes.messages import download_type
from core.blobs import BlobStore
from core.db.session import tenant_scope
from core.runtime import Runtime
from core.tickets.models import Attachment, Message, RawInbound, RawInboundStatus
from tests.admin_api.conftest import Headers
from tests.conftest import make_tenant
from tests.core.factories import make_ticket

RAW = b"From: bob@example.test\r\nSubject: Backup fails\r\n\r\nHello, my backup fails\r\n\xff\x00 binary tail\r\n"


def _mail_message(rt: Runtime, tenant_id: uuid.UUID, ticket_id: uuid.UUID) -> Message:
    """Attach a stored raw mail and one attachment to the ticket's first message."""
    with tenant_scope(rt.factory, tenant_id) as session:
        raw = RawInbound(tenant_id=tenant_id, source="smtp", idempotency_key=uuid.uuid4().hex, payload=RAW,
                         status=RawInboundStatus.PROCESSED)
        session.add(raw)
        session.flush()
        message = session.execute(select(Message).where(Message.ticket_id == ticket_id)).scalar_one()
        message.raw_inbound_id = raw.id
        sha = BlobStore.from_settings(rt.settings).put(b"<script>alert(1)</script>")
        session.add(Attachment(tenant_id=tenant_id, message_id=message.id, filename="invoice “Q1”.html",
                               content_type="text/html; charset=utf-8", size=25, sha256=sha))
        session.flush()
        session.expunge(message)
        return message


def test_the_raw_mail_downloads_byte_for_byte(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    tenant, inbox = make_tenant(runtime)
    ticket_id, number = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    message = _mail_message(runtime, tenant.id, ticket_id)
    res = api.get(f"/api/v1/tickets/{number}/messages/{message.id}/raw", headers=key_for(tenant.id))
    assert (res.status_code, res.headers["content-type"], res.content) == (200, "message/rfc822", RAW)


def test_an_html_attachment_is_served_as_an_inert_download(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    tenant, inbox = make_tenant(runtime)
    ticket_id, number = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    _mail_message(runtime, tenant.id, ticket_id)
    headers = key_for(tenant.id)
    listed = api.get(f"/api/v1/tickets/{number}", headers=headers).json()["messages"][0]["attachments"]
    res = api.get(f"/api/v1/tickets/{number}/attachments/{listed[0]['id']}", headers=headers)
    assert (res.headers["content-type"], res.headers["x-content-type-options"], res.content) == (
        "application/octet-stream", "nosniff", b"<script>alert(1)</script>")
    disposition = res.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=\"invoice _Q1_.html\"; filename*=UTF-8''invoice")


@pytest.mark.parametrize(("stored", "served"), [
    ("application/pdf", "application/octet-stream"), ("image/svg+xml", "application/octet-stream"),
    ("text/html", "application/octet-stream"), ("TEXT/XML", "application/octet-stream"),
    ("image/png", "image/png"), ("text/plain; charset=utf-8", "text/plain"), ("bogus", "application/octet-stream"),
])
def test_download_type_keeps_only_passive_types(stored: str, served: str) -> None:
    assert download_type(stored) == served


def test_another_tenants_attachment_is_404(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    a, _ = make_tenant(runtime)
    b, inbox_b = make_tenant(runtime)
    ticket_id, number = make_ticket(runtime, tenant_id=b.id, inbox_id=inbox_b.id)
    message = _mail_message(runtime, b.id, ticket_id)
    res = api.get(f"/api/v1/tickets/{number}/messages/{message.id}/raw", headers=key_for(a.id))
    assert res.status_code == 404
