"""The widget in a real browser against the wrong site or the wrong person: a host page not on the
inbox's list gets no chat, a spoofed identity gets no history, and a visitor's file round-trips."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.runtime import Runtime
from tests.conftest import make_tenant
from tests.inbound.widget import test_browser as shared
from tests.inbound.widget.conftest import enable_widget

pytestmark = pytest.mark.slow
api, browser, host_page = shared.api, shared.browser, shared.host_page  # fixtures

SECRET = "s" * 40
SNIPPET = '<script async src="{api}/widget/v1/loader.js" data-inbox="{inbox}"></script>'


def test_a_host_page_not_on_the_list_gets_a_refusal_not_the_chat(
    runtime: Runtime, api: str, host_page: tuple[Path, str], browser: Any
) -> None:
    site, origin = host_page
    _, inbox = make_tenant(runtime)
    enable_widget(runtime, inbox.id, allowed_origins=["https://shop.example"])
    (site / "index.html").write_text("<!doctype html><title>Other</title>" + SNIPPET.format(api=api, inbox=inbox.id))
    page = browser.new_page()
    page.goto(f"{origin}/index.html")
    with page.expect_response(lambda r: "/widget/v1/frame" in r.url) as answer:
        page.locator("[data-threadline] >> button").click()
    assert answer.value.status == 403
    frame = page.frame_locator("iframe[title]")
    assert frame.locator("#refused").inner_text() == "This chat is not available on this site."
    assert frame.locator("#composer").count() == 0
    r = httpx.post(f"{api}/widget/v1/conversations", json={"inbox_id": str(inbox.id)}, headers={"Origin": origin})
    assert r.status_code == 403


def test_a_page_that_frames_the_chat_claiming_an_allowed_host_is_refused_by_frame_ancestors(
    runtime: Runtime, api: str, host_page: tuple[Path, str], browser: Any
) -> None:
    site, origin = host_page
    _, inbox = make_tenant(runtime)
    enable_widget(runtime, inbox.id, allowed_origins=["https://shop.example"])
    (site / "index.html").write_text(  # a hand-made iframe lying about its host page
        f'<!doctype html><iframe src="{api}/widget/v1/frame?inbox={inbox.id}&host=https://shop.example"></iframe>')
    page = browser.new_page()
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "frame-ancestors" in m.text else None)
    with page.expect_response(lambda r: "/widget/v1/frame" in r.url) as answer:
        page.goto(f"{origin}/index.html")
    assert answer.value.status == 200  # the server cannot tell: the browser refuses to show it
    page.wait_for_timeout(1000)
    assert page.frame_locator("iframe").locator("#composer").count() == 0
    assert refusals


def _seed_history(api: str, origin: str, inbox_id: str) -> None:
    """The real user u-42 chatted before, signed by the site's server."""
    user_hash = hmac.new(SECRET.encode(), b"u-42", hashlib.sha256).hexdigest()
    with httpx.Client(base_url=api, headers={"Origin": origin}) as http:
        started = http.post("/widget/v1/conversations", json={"inbox_id": inbox_id, "user_id": "u-42",
                                                                "user_hash": user_hash})
        assert started.status_code == 200, started.text
        sent = http.post("/widget/v1/messages", json={"client_message_id": "seed-000001",
                                                      "text": "ship order 1234 to 1 Secret Lane"},
                         headers={"X-Threadline-Visitor": started.json()["token"]})
        assert sent.status_code == 201, sent.text


@pytest.mark.parametrize(("mode", "user_hash", "sees_history"), [
    ("enforce", "0" * 64, False),
    ("optional", "0" * 64, False),
    ("enforce", hmac.new(SECRET.encode(), b"u-42", hashlib.sha256).hexdigest(), True),  # the control
])
def test_a_spoofed_identity_gets_no_history_in_the_browser(
    runtime: Runtime, api: str, host_page: tuple[Path, str], browser: Any,
    mode: str, user_hash: str, sees_history: bool,
) -> None:
    site, origin = host_page
    _, inbox = make_tenant(runtime)
    enable_widget(runtime, inbox.id, allowed_origins=[origin], identity_mode=mode, identity_secret=SECRET)
    _seed_history(api, origin, str(inbox.id))
    (site / "index.html").write_text(
        "<!doctype html><title>Shop</title>" + SNIPPET.format(api=api, inbox=inbox.id)
        + f'<script>addEventListener("load", () => Threadline.identify({{userId: "u-42", userHash: "{user_hash}"}}))'
        "</script>"
    )
    page = browser.new_page()
    page.goto(f"{origin}/index.html")
    page.locator("[data-threadline] >> button").click()
    frame = page.frame_locator("iframe[title]")
    frame.locator("#text").fill("hello, any news?")
    frame.locator("#text").press("Enter")
    if sees_history:
        frame.locator("li", has_text="Secret Lane").wait_for(timeout=10000)
        return
    if mode == "enforce":
        frame.locator("#status", has_text="not signed").wait_for(timeout=10000)
    else:
        frame.locator("li.visitor:not(.pending)").wait_for(timeout=10000)  # sent, as an anonymous visitor
    page.wait_for_timeout(1000)
    assert "Secret Lane" not in frame.locator("#messages").inner_text()


def test_a_visitor_uploads_a_file_from_the_keyboard_and_downloads_it(
    runtime: Runtime, api: str, host_page: tuple[Path, str], browser: Any, tmp_path: Path
) -> None:
    site, origin = host_page
    _, inbox = make_tenant(runtime)
    enable_widget(runtime, inbox.id, allowed_origins=[origin])
    (site / "index.html").write_text("<!doctype html><title>Shop</title>" + SNIPPET.format(api=api, inbox=inbox.id))
    invoice = tmp_path / "invoice 7.pdf"
    invoice.write_bytes(b"%PDF-1.4\n% an invoice\n")
    page = browser.new_page()
    page.goto(f"{origin}/index.html")
    page.locator("[data-threadline] >> button").click()
    frame = page.frame_locator("iframe[title]")
    attach = frame.get_by_role("button", name="Attach a file")
    frame.locator("#attach:enabled").wait_for(timeout=10000)  # enabled once the script listens to it
    frame.locator("#text").focus()
    page.keyboard.press("Shift+Tab")  # the attach button comes right before the message box
    assert attach.evaluate("(el) => el === document.activeElement")
    # Enter on the button must open the file input's picker (its click). Playwright's file chooser
    # interception is flaky inside a cross-origin frame on a loaded machine, so the test watches the
    # click itself, then hands the file to the input as the picker would.
    file_input = frame.locator("#file")
    file_input.evaluate("(el) => el.addEventListener('click', (e) => { e.preventDefault(); el.dataset.picked = '1'; })")
    page.keyboard.press("Enter")
    frame.locator("#file[data-picked='1']").wait_for(state="attached", timeout=10000)
    file_input.set_input_files(str(invoice))
    link = frame.get_by_role("link", name="Download invoice 7.pdf")
    link.wait_for(timeout=10000)
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "downloaded"
    download.value.save_as(saved)
    assert (download.value.suggested_filename, saved.read_bytes()) == ("invoice 7.pdf", invoice.read_bytes())
