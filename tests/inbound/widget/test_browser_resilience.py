"""The widget in a real browser when the network fails: a killed socket loses no agent reply, and
a dead API server costs the host page nothing (no broken page, no long task)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db.session import tenant_scope
from core.runtime import Runtime
from core.tickets import replies, service
from core.tickets.models import ActorKind
from core.tickets.schemas import Actor
from inbound.widget.models import WidgetAuthor, WidgetMessage
from tests.conftest import make_tenant
from tests.inbound.widget import test_browser as shared
from tests.inbound.widget.conftest import enable_widget
from tests.inbound.widget.test_browser import free_port, serve_api, tickets_of, wait_until

pytestmark = pytest.mark.slow
browser, host_page = shared.browser, shared.host_page  # fixtures


class Cable:
    """A TCP proxy between the browser and the API server that the test can cut and block,
    as a phone losing its network would: every open connection (the socket included) dies."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.blocked = threading.Event()
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.blocked.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.open.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        with self.lock:
            self.open.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def cut(self) -> None:
        with self.lock:
            live = list(self.open)
        for s in live:
            self._drop(s)

    def close(self) -> None:
        self.listener.close()
        self.cut()


@pytest.fixture()
def cable_api(runtime: Runtime) -> Iterator[tuple[str, Cable]]:
    port = free_port()
    cable = Cable(port)
    with serve_api(runtime, port=port, public_url=f"http://127.0.0.1:{cable.port}") as server:
        yield server.url, cable
    cable.close()


def _agent_reply(runtime: Runtime, tenant_id: uuid.UUID, ticket_id: uuid.UUID, text: str) -> None:
    with tenant_scope(runtime.factory, tenant_id) as session:
        t = service.get_ticket(session=session, ticket_id=ticket_id, for_update=True)
        replies.send_public_reply(session=session, registry=runtime.registry, ticket=t, text=text,
                                  actor=Actor(ActorKind.AGENT, None, "Ann Agent"))


def _agent_rows(runtime: Runtime, tenant_id: uuid.UUID) -> int:
    with tenant_scope(runtime.factory, tenant_id) as session:
        return int(session.execute(select(func.count()).select_from(WidgetMessage)
                                   .where(WidgetMessage.author == WidgetAuthor.AGENT)).scalar_one())


def test_three_replies_posted_while_the_socket_is_down_show_once_and_in_order_after_reconnect(
    runtime: Runtime, cable_api: tuple[str, Cable], host_page: tuple[Path, str], browser: Any
) -> None:
    api, cable = cable_api
    site, origin = host_page
    tenant, inbox = make_tenant(runtime)
    enable_widget(runtime, inbox.id, allowed_origins=[origin])
    (site / "index.html").write_text(
        f'<!doctype html><title>Shop</title><script async src="{api}/widget/v1/loader.js" data-inbox="{inbox.id}">'
        "</script>"
    )
    page = browser.new_page()
    page.goto(f"{origin}/index.html")
    page.locator("[data-threadline] >> button").click()
    frame = page.frame_locator("iframe[title]")
    frame.locator("#text").fill("where is my order?")
    frame.locator("#text").press("Enter")
    (ticket,) = wait_until(lambda: tickets_of(runtime, tenant.id))
    frame.locator("li.visitor:not(.pending)").wait_for()
    time.sleep(0.5)  # the socket's "ready" after the first send
    _agent_reply(runtime, tenant.id, ticket.id, "live: looking now")
    agents = frame.locator("li.agent p")
    agents.first.wait_for(timeout=10000)  # arrived over the live socket

    cable.blocked.set()
    cable.cut()  # the socket and every keep-alive connection die; reconnects are refused
    for text in ("one", "two", "three"):
        _agent_reply(runtime, tenant.id, ticket.id, text)
    wait_until(lambda: _agent_rows(runtime, tenant.id) == 4)  # delivered to the transcript meanwhile
    assert agents.count() == 1
    cable.blocked.clear()

    wait_until(lambda: agents.count() >= 4, timeout=30)
    time.sleep(1.5)  # any duplicate from a second catch-up would show by now
    assert agents.all_inner_texts() == ["live: looking now", "one", "two", "three"]


LONGTASKS = """
window.__longtasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    window.__longtasks.push({duration: e.duration, name: e.name,
      attribution: (e.attribution || []).map((a) => [a.containerType, a.containerSrc, a.containerName])});
  }
}).observe({type: "longtask", buffered: true});
"""

HOST_PAGE = """<!doctype html><title>Shop</title>
<button id="add" type="button">Add to cart</button> <output id="count">0</output>
<input id="search" aria-label="Search">
<script>document.getElementById("add").onclick = () => {{
  const out = document.getElementById("count"); out.textContent = String(Number(out.textContent) + 1); }};</script>
<script async src="{api}/widget/v1/loader.js" data-inbox="{inbox}"></script>
"""


@pytest.mark.parametrize("when", ["never up", "down after the page loaded"])
def test_the_host_page_loads_and_works_with_the_api_server_down(
    runtime: Runtime, host_page: tuple[Path, str], browser: Any, when: str
) -> None:
    site, origin = host_page
    _, inbox = make_tenant(runtime)
    enable_widget(runtime, inbox.id, allowed_origins=[origin])
    page = browser.new_page()
    page.add_init_script(LONGTASKS)
    if when == "never up":
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        (site / "index.html").write_text(HOST_PAGE.format(api=dead, inbox=inbox.id))
        started = time.monotonic()
        page.goto(f"{origin}/index.html", wait_until="load")
        assert time.monotonic() - started < 5
    else:
        with serve_api(runtime) as server:
            (site / "index.html").write_text(HOST_PAGE.format(api=server.url, inbox=inbox.id))
            page.goto(f"{origin}/index.html", wait_until="load")
            page.locator("[data-threadline] >> button").wait_for()
        page.locator("[data-threadline] >> button").click()  # the chat frame cannot load now
        page.wait_for_timeout(1000)

    page.locator("#add").click()
    page.locator("#add").click()
    page.locator("#search").fill("blue shoes")
    assert (page.locator("#count").inner_text(), page.locator("#search").input_value()) == ("2", "blue shoes")
    page.wait_for_timeout(500)  # let the observer deliver buffered entries
    # The page's only other script is the two-line click handler: every long task would be ours. A
    # retry loop or a synchronous wait freezes the page for hundreds of ms, again and again; one task a
    # hair over the 50 ms long-task mark is a CPU-starved test machine rendering (54 ms seen in CI).
    tasks = page.evaluate("() => window.__longtasks")
    assert (len(tasks) <= 1, max((t["duration"] for t in tasks), default=0) < 150) == (True, True), tasks
