"""Erasing a contact leaves no trace of their content: not in any table, not in the blob store."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from core.blobs import BlobStore
from core.db.session import make_engine, system_scope, tenant_scope
from core.registry import Registry, load_plugins
from core.retention.erase import delete_blobs, erase_contact
from core.runtime import Runtime
from core.settings import Settings
from core.tenancy.audit import AuditContext
from core.tenancy.models import AuditEntry
from core.tickets.models import TicketEvent
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import deliver
from tests.inbound.widget.conftest import Visitor, enable_widget, widget_app
from tests.support.jobs import drain_jobs
from tests.support.servers import RedisForTests

MARKER = "zq-marker-7f3a91"
SHARED = b"the same brochure everyone sends"


@pytest.fixture()
def settings(tmp_path: Path, redis_server: RedisForTests) -> Settings:
    """With what the web chat needs (its rate limits, signed tokens and upload refs)."""
    return Settings(THREADLINE_DATA_DIR=tmp_path, REDIS_URL=redis_server.url, THREADLINE_SECRET_KEY="erasure-test-key",
                    THREADLINE_JOB_MIN_BACKOFF_MS=10, THREADLINE_JOB_MAX_RETRIES=2)


def _web_chat(runtime: Runtime, inbox_id: object, email: str, text: str, upload: bytes) -> None:
    """A visitor's conversation with one message and one uploaded file, through the widget API."""
    enable_widget(runtime, inbox_id)
    with TestClient(widget_app(runtime)) as http:
        visitor = Visitor(http, str(inbox_id))
        assert visitor.start(email=email).status_code == 200
        up = http.post("/widget/v1/attachments", files={"file": ("notes.pdf", upload, "application/pdf")},
                       headers=visitor.headers())
        assert up.status_code == 201, up.text
        sent = http.post("/widget/v1/messages", json={"client_message_id": "client-0001", "text": text,
                                                      "attachments": [up.json()["ref"]]}, headers=visitor.headers())
        assert sent.status_code == 201, sent.text
    drain_jobs(runtime)


def _mail(sender: str, body: str, attachments: list[tuple[str, bytes]]) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "help@acme.test", f"Question {body[:12]}"
    msg["Message-ID"] = f"<{abs(hash(body))}@customer.test>"
    msg.set_content(body)
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes(policy=policy.SMTP)


def _tables_with(database_url: str, needle: str) -> list[str]:
    """Every public table whose rows mention `needle` in any column (text, JSON, arrays, bytes);
    as the test server's superuser, so neither grants nor RLS hide a row."""
    found = []
    engine = make_engine(database_url, pool_size=1)
    with engine.connect() as session:
        tables = session.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
        for table in tables:
            cols = session.execute(text(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = :t AND data_type = 'bytea'"), {"t": table}).scalars().all()
            checks = ["strpos(CAST(t AS text), :m) > 0"] + [f"position(convert_to(:m, 'UTF8') in t.\"{c}\") > 0"
                                                             for c in cols]
            hit = session.execute(text(f"SELECT 1 FROM {table} t WHERE {' OR '.join(checks)} LIMIT 1"),
                                  {"m": needle}).first()
            if hit:
                found.append(table)
    engine.dispose()
    return found


def test_erasure_leaves_no_trace_of_the_contacts_content(runtime: Runtime, owner_url: str) -> None:
    tenant, inbox = make_tenant(runtime, address="help@acme.test")
    _web_chat(runtime, inbox.id, "erin@customer.test", f"Chat {MARKER}", f"%PDF-1.4 upload {MARKER}".encode())
    deliver(runtime, _mail("erin@customer.test", f"My secret is {MARKER}",
                           [("secret.bin", f"bytes {MARKER}".encode()), ("brochure.pdf", SHARED)]))
    deliver(runtime, _mail("erin@customer.test", f"Follow-up {MARKER} again", []))
    deliver(runtime, _mail("other@customer.test", "Unrelated question", [("brochure.pdf", SHARED)]))
    assert {"messages", "widget_messages"} <= set(_tables_with(owner_url, MARKER))
    store = BlobStore.from_settings(runtime.settings)

    with tenant_scope(runtime.factory, tenant.id) as session:
        report = erase_contact(session=session, tenant_id=tenant.id, email="Erin@Customer.test",
                               audit=AuditContext("cli:tester"), erasers=load_plugins(Registry()).contact_erasers)
    delete_blobs(runtime.factory, store, report.blob_candidates)

    assert _tables_with(owner_url, MARKER) == []
    assert [p for p in store.root.rglob("*") if p.is_file() and MARKER.encode() in p.read_bytes()] == []
    assert store.get(store.put(SHARED)) == SHARED  # still named by the other contact's attachment
    assert _tables_with(owner_url, "erin@customer.test") == []
    with system_scope(runtime.factory) as session:
        entry = session.execute(select(AuditEntry).where(AuditEntry.action == "contact.erased")).scalar_one()
        assert session.execute(select(TicketEvent)).scalars().all(), "other tickets' timelines stay"
    assert (entry.actor, report.tickets, report.messages) == ("cli:tester", 3, 3)  # two mails, one web chat


def test_the_timeline_stays_append_only_outside_the_erase_function(runtime: Runtime, owner_url: str) -> None:
    """Even the owner's DELETE is refused by the trigger; the runtime role has no DELETE at all."""
    tenant, _ = make_tenant(runtime, address="help@acme.test")
    deliver(runtime, _mail("erin@customer.test", "hello", []))
    with pytest.raises(DBAPIError, match="permission denied"), tenant_scope(runtime.factory, tenant.id) as session:
        session.execute(text("DELETE FROM ticket_events"))
    engine = make_engine(owner_url, pool_size=1)
    try:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM ticket_events"))
    finally:
        engine.dispose()
