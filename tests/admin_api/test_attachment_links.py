"""GET /attachments/<link>: a customer's file by its signed link, through the real app and Postgres."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from admin_api.app import create_app
from core.attachments import links
from core.db.session import system_scope
from core.runtime import Runtime
from core.tickets.models import Attachment
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import deliver

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"


def customer_mail(to: str, files: list[tuple[str, str, bytes]]) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "bob@customer.test", to, "Invoice wrong"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@customer.test>"
    msg.set_content("See the attached invoice.")
    for name, ctype, data in files:
        main, _, sub = ctype.partition("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes(policy=policy.SMTP)


def stored(rt: Runtime, tenant_id: uuid.UUID) -> dict[str, uuid.UUID]:
    with system_scope(rt.factory) as session:
        rows = session.execute(select(Attachment.filename, Attachment.id).where(Attachment.tenant_id == tenant_id))
        return {name: aid for name, aid in rows}


@pytest.fixture()
def http(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        yield client


def _path(rt: Runtime, tenant_id: uuid.UUID, attachment_id: uuid.UUID, **kw: int) -> str:
    key = links.link_key(rt.settings)
    ttl = kw.get("ttl", 3600)
    return links.DOWNLOAD_PATH + links.sign(key, tenant_id=tenant_id, attachment_id=attachment_id, ttl_seconds=ttl,
                                            now=kw.get("now", time.time()))


def test_a_customers_pdf_downloads_with_safe_headers(runtime: Runtime, http: TestClient) -> None:
    tenant, inbox = make_tenant(runtime)
    deliver(runtime, customer_mail(inbox.address, [("Rëchnung 03.pdf", "application/pdf", PDF)]), to=inbox.address)
    url = links.download_url(runtime.settings, links.link_key(runtime.settings), tenant_id=tenant.id,
                             attachment_id=stored(runtime, tenant.id)["Rëchnung 03.pdf"])
    assert url.startswith(runtime.settings.public_url + "/attachments/v1.")
    got = http.get(url.removeprefix(runtime.settings.public_url))
    assert got.status_code == 200
    assert got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"R_chnung 03.pdf\"; filename*=UTF-8''R%C3%ABchnung%2003.pdf")
    assert got.headers["x-content-type-options"] == "nosniff"


def test_html_sent_as_a_pdf_is_served_as_octet_stream(runtime: Runtime, http: TestClient) -> None:
    tenant, inbox = make_tenant(runtime)
    page = b"<html><body><script>steal(document.cookie)</script></body></html>"
    deliver(runtime, customer_mail(inbox.address, [("invoice.pdf", "application/pdf", page)]), to=inbox.address)
    got = http.get(_path(runtime, tenant.id, stored(runtime, tenant.id)["invoice.pdf"]))
    assert (got.status_code, got.headers["content-type"], got.content) == (200, "application/octet-stream", page)
    assert got.headers["content-disposition"].startswith("attachment;")


def test_an_expired_link_is_403(runtime: Runtime, http: TestClient) -> None:
    tenant, inbox = make_tenant(runtime)
    deliver(runtime, customer_mail(inbox.address, [("a.pdf", "application/pdf", PDF)]), to=inbox.address)
    path = _path(runtime, tenant.id, stored(runtime, tenant.id)["a.pdf"], ttl=60, now=int(time.time()) - 120)
    assert http.get(path).status_code == 403


@pytest.mark.parametrize("field", ["kid", "tenant", "attachment", "expires", "mac"])
def test_an_altered_link_is_403(runtime: Runtime, http: TestClient, field: str) -> None:
    tenant, inbox = make_tenant(runtime)
    deliver(runtime, customer_mail(inbox.address, [("a.pdf", "application/pdf", PDF), ("b.pdf", "application/pdf",
                                                                                         PDF + b"2")]),
            to=inbox.address)
    files = stored(runtime, tenant.id)
    path = _path(runtime, tenant.id, files["a.pdf"])
    assert http.get(path).status_code == 200
    body, mac = path.removeprefix(links.DOWNLOAD_PATH).rsplit(".", 1)
    v, kid, tid, aid, exp = body.split(".")
    changed = {
        "kid": f"{v}.{'f' * 8}.{tid}.{aid}.{exp}.{mac}",
        "tenant": f"{v}.{kid}.{make_tenant(runtime)[0].id.hex}.{aid}.{exp}.{mac}",
        "attachment": f"{v}.{kid}.{tid}.{files['b.pdf'].hex}.{exp}.{mac}",
        "expires": f"{v}.{kid}.{tid}.{aid}.{int(exp) + 86400 * 365}.{mac}",
        "mac": f"{body}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}",
    }[field]
    assert http.get(links.DOWNLOAD_PATH + changed).status_code == 403


def test_a_link_of_tenant_a_cannot_fetch_tenant_bs_attachment(runtime: Runtime, http: TestClient) -> None:
    a, _ = make_tenant(runtime)
    b, inbox_b = make_tenant(runtime)
    deliver(runtime, customer_mail(inbox_b.address, [("secret.pdf", "application/pdf", PDF)]), to=inbox_b.address)
    theirs = stored(runtime, b.id)["secret.pdf"]
    assert http.get(_path(runtime, b.id, theirs)).status_code == 200  # B's own link works
    # Even a link we signed, naming tenant A and B's attachment id, finds nothing in A's scope.
    assert http.get(_path(runtime, a.id, theirs)).status_code == 403
