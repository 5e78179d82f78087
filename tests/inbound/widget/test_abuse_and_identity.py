"""Rate limits answer a readable 429; identity verification cannot be spoofed."""

from __future__ import annotations

import hashlib
import hmac
import uuid

from tests.inbound.widget.conftest import WidgetWorld, enable_widget

SECRET = "site-identity-secret-of-32-characters-or-more"


def _sign(user_id: str) -> str:
    return hmac.new(SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def test_one_chatty_token_gets_a_readable_429_and_its_neighbours_behind_one_nat_do_not(widget: WidgetWorld) -> None:
    chatty, neighbour = widget.visitor(), widget.visitor()
    chatty.start()
    neighbour.start()
    codes = [chatty.send(f"spam {i}", f"client-{i:04d}") for i in range(41)]  # >20 in one window, whatever the clock
    limited = next(r for r in codes if r.status_code == 429)
    assert "Please wait" in limited.json()["error"] and int(limited.headers["Retry-After"]) > 0
    assert neighbour.send("a real question", "client-9999").status_code == 201


def test_enforce_mode_refuses_an_unsigned_identity(widget: WidgetWorld) -> None:
    enable_widget(widget.runtime, uuid.UUID(widget.inbox_id), identity_mode="enforce", identity_secret=SECRET)
    assert widget.visitor().start(user_id="u-1", user_hash="0" * 64).status_code == 403
    assert widget.visitor().start(user_id="u-1").status_code == 403


def test_a_signed_identity_resumes_its_conversation_on_another_device(widget: WidgetWorld) -> None:
    enable_widget(widget.runtime, uuid.UUID(widget.inbox_id), identity_mode="enforce", identity_secret=SECRET)
    laptop = widget.visitor()
    assert laptop.start(user_id="u-1", user_hash=_sign("u-1"), email="u1@site.test").json()["identified"] is True
    laptop.send("from my laptop", "client-0001")
    phone = widget.visitor()
    phone.start(user_id="u-1", user_hash=_sign("u-1"))
    assert phone.conversation_id == laptop.conversation_id
    assert [m["body_text"] for m in phone.history().json()["messages"]] == ["from my laptop"]


def test_optional_mode_an_unsigned_identity_gets_a_fresh_conversation_without_history(widget: WidgetWorld) -> None:
    enable_widget(widget.runtime, uuid.UUID(widget.inbox_id), identity_mode="optional", identity_secret=SECRET)
    real = widget.visitor()
    real.start(user_id="u-1", user_hash=_sign("u-1"))
    real.send("private order details", "client-0001")
    spoof = widget.visitor()
    body = spoof.start(user_id="u-1").json()
    assert body["identified"] is False and body["conversation_id"] != real.conversation_id
    assert spoof.history().json()["messages"] == []
