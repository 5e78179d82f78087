"""An agent's files reach a web chat visitor as signed download links (issue 10, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from core.attachments.files import StoredFile
from core.blobs import BlobStore
from core.db.session import system_scope, tenant_scope
from core.settings import Settings
from core.tickets import replies, service
from core.tickets.models import ActorKind, Ticket
from core.tickets.schemas import Actor
from tests.inbound.widget.conftest import OWN, WidgetWorld
from tests.support.jobs import drain_jobs
from tests.support.servers import RedisForTests

AGENT = Actor(ActorKind.AGENT, None, "Ann Agent")
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
PAGE = b"<html><script>alert(1)</script></html>"


@pytest.fixture()
def settings(tmp_path: Path, redis_server: RedisForTests) -> Settings:
    return Settings(THREADLINE_DATA_DIR=tmp_path, THREADLINE_JOB_MIN_BACKOFF_MS=10, THREADLINE_JOB_MAX_RETRIES=2,
                    REDIS_URL=redis_server.url, THREADLINE_PUBLIC_URL=OWN, THREADLINE_UNDO_SECONDS=0,
                    THREADLINE_SECRET_KEY="widget-test-secret-key")


def test_a_visitor_downloads_the_agents_file_with_the_exact_bytes(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start(name="Vera")
    v.send("Can I have the invoice?", "client-0001")
    drain_jobs(widget.runtime)
    blobs = BlobStore.from_settings(widget.runtime.settings)
    files = [StoredFile(blobs.put(PDF), "invoice.pdf", "application/pdf", len(PDF)),
             StoredFile(blobs.put(PAGE), "page.html", "text/html", len(PAGE))]
    with system_scope(widget.runtime.factory) as session:
        (ticket,) = session.execute(select(Ticket)).scalars()
    with tenant_scope(widget.runtime.factory, ticket.tenant_id) as session:
        t = service.get_ticket(session=session, ticket_id=ticket.id, for_update=True)
        replies.send_public_reply(session=session, registry=widget.runtime.registry, ticket=t, text="Here it is.",
                                  actor=AGENT, files=files)
    drain_jobs(widget.runtime, include_delayed=True)
    reply = v.history().json()["messages"][-1]
    assert (reply["author"], reply["body_text"]) == ("agent", "Here it is.")
    shown = {f["filename"]: f for f in reply["attachments"]}
    pdf = widget.http.get(str(shown["invoice.pdf"]["url"]))
    assert (pdf.status_code, pdf.content, pdf.headers["content-type"]) == (200, PDF, "application/pdf")
    assert pdf.headers["content-disposition"].startswith("attachment;")
    page = widget.http.get(str(shown["page.html"]["url"]))  # the agent's HTML is a download, never a page
    assert (page.content, page.headers["content-type"]) == (PAGE, "application/octet-stream")
