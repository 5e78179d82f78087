"""The widget in a real browser (Debian's chromium driven by Playwright): a host page with the
snippet, a visitor's message becoming a ticket, an agent's reply appearing live, text as text."""

from __future__ import annotations

import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.db.session import tenant_scope
from core.runtime import Runtime
from core.tickets import replies, service
from core.tickets.models import ActorKind, Channel, Ticket
from core.tickets.schemas import Actor
from tests.conftest import make_tenant
from tests.inbound.widget.conftest import enable_widget, widget_app
from tests.support.jobs import drain_jobs

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ApiServer:
    """The API server (uvicorn, a thread) plus a job loop standing in for relay + worker."""

    url: str
    server: Any
    thread: threading.Thread
    worker: threading.Thread
    stop: threading.Event

    def close(self) -> None:
        self.stop.set()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.worker.join(timeout=10)


@contextmanager
def serve_api(runtime: Runtime, *, public_url: str | None = None, port: int | None = None) -> Iterator[ApiServer]:
    """Serve on `port` (a free one by default); `public_url` is where browsers reach it (a proxy, say)."""
    import uvicorn

    port = port or free_port()
    runtime.settings.public_url = public_url or f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(widget_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    stop = threading.Event()

    def jobs() -> None:
        while not stop.is_set():
            drain_jobs(runtime, rounds=3)
            stop.wait(0.1)

    worker = threading.Thread(target=jobs, daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    handle = ApiServer(runtime.settings.public_url, server, thread, worker, stop)
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture()
def api(runtime: Runtime) -> Iterator[str]:
    with serve_api(runtime) as server:
        yield server.url


@pytest.fixture()
def host_page(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A plain static site on another origin (localhost vs 127.0.0.1)."""
    port = free_port()
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield tmp_path, f"http://localhost:{port}"
    httpd.shutdown()


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/test installs it with apt)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (dev extra)")
    profile = tmp_path / "profile"
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=ARGS,
        )
        yield context
        context.close()


def tickets_of(runtime: Runtime, tenant_id: uuid.UUID) -> list[Ticket]:
    with tenant_scope(runtime.factory, tenant_id) as session:
        return list(session.execute(select(Ticket)).scalars())


def wait_until(predicate: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_a_visitor_message_becomes_a_ticket_and_the_agent_reply_appears_live(
    runtime: Runtime, api: str, host_page: tuple[Path, str], browser: Any
) -> None:
    site, origin = host_page
    tenant, inbox = make_tenant(runtime)
    enable_widget(runtime, inbox.id, allowed_origins=[origin])
    (site / "index.html").write_text(
        "<!doctype html><title>Shop</title><h1>Shop</h1>"
        f'<script async src="{api}/widget/v1/loader.js" data-inbox="{inbox.id}"></script>'
    )
    page = browser.new_page()
    page.goto(f"{origin}/index.html")
    assert page.evaluate("() => Object.keys(localStorage).length + document.cookie.length") == 0
    page.locator("[data-threadline] >> button").click()  # the launcher, in its shadow root
    frame = page.frame_locator("iframe[title]")
    evil = "<img src=x onerror=\"document.title='pwned'\">"
    frame.locator("#text").fill(evil)
    frame.locator("#text").press("Enter")
    (ticket,) = wait_until(lambda: tickets_of(runtime, tenant.id))
    assert ticket.channel is Channel.WIDGET
    frame.locator("li.visitor:not(.pending)").wait_for()
    # The visitor has a socket now; the agent answers (as Slack would, through core services).
    wait_until(lambda: frame.locator("li.visitor").count() == 1 and page.evaluate("() => true"))
    time.sleep(0.5)
    with tenant_scope(runtime.factory, tenant.id) as session:
        t = service.get_ticket(session=session, ticket_id=ticket.id, for_update=True)
        replies.send_public_reply(session=session, registry=runtime.registry, ticket=t,
                                  text="Thanks! <b>bold</b> <script>alert(1)</script>",
                                  actor=Actor(ActorKind.AGENT, None, "Ann Agent"))
    agent = frame.locator("li.agent p")
    agent.wait_for(timeout=10000)
    assert agent.inner_text() == "Thanks! <b>bold</b> <script>alert(1)</script>"
    assert frame.locator("li.visitor p").inner_text() == evil
    assert frame.locator("li img").count() == 0 and frame.locator("li b").count() == 0
    assert page.title() == "Shop"
