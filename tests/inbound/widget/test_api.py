"""The public widget API end to end on a real Postgres and Redis: idempotent sends, cursor
history, origins, tokens, the ingest pipeline into one ticket, and agent replies coming back."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import func, select
from starlette.websockets import WebSocketDisconnect

from core.db.session import tenant_scope
from core.tickets import replies, service
from core.tickets.models import ActorKind, Channel, DeliveryState, Direction, Message, RawInbound, Ticket
from core.tickets.schemas import Actor
from inbound.widget import tokens
from tests.inbound.widget.conftest import OWN, WidgetWorld
from tests.support.jobs import drain_jobs

AGENT = Actor(ActorKind.AGENT, None, "Ann Agent")


def _tickets(world: WidgetWorld) -> list[Ticket]:
    with tenant_scope(world.runtime.factory, _tenant(world)) as session:
        return list(session.execute(select(Ticket)).scalars())


def _tenant(world: WidgetWorld) -> uuid.UUID:
    from core.db.session import system_scope
    from core.tenancy.models import Inbox

    with system_scope(world.runtime.factory) as session:
        return session.get_one(Inbox, uuid.UUID(world.inbox_id)).tenant_id


def _agent_replies(world: WidgetWorld, text: str) -> uuid.UUID:
    (ticket,) = _tickets(world)
    with tenant_scope(world.runtime.factory, ticket.tenant_id) as session:
        t = service.get_ticket(session=session, ticket_id=ticket.id, for_update=True)
        out = replies.send_public_reply(session=session, registry=world.runtime.registry, ticket=t, text=text,
                                        actor=AGENT)
        return out.value.id


def test_a_double_post_with_one_client_id_is_one_message(widget: WidgetWorld) -> None:
    v = widget.visitor()
    assert v.start().status_code == 200
    first, again = v.send("hello", "client-0001"), v.send("hello", "client-0001")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    drain_jobs(widget.runtime)
    with tenant_scope(widget.runtime.factory, _tenant(widget)) as session:
        assert session.execute(select(func.count()).select_from(RawInbound)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(Message)).scalar_one() == 1


def test_messages_go_through_ingest_into_one_widget_ticket_per_conversation(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start(name="Vera", email="vera@visitor.test")
    v.send("My order is late", "client-0001")
    drain_jobs(widget.runtime)
    v.send("Order 1234", "client-0002")
    drain_jobs(widget.runtime)
    (ticket,) = _tickets(widget)
    assert (ticket.channel, ticket.subject) == (Channel.WIDGET, "Web chat: My order is late")
    with tenant_scope(widget.runtime.factory, ticket.tenant_id) as session:
        msgs = service.ticket_messages(session=session, ticket_id=ticket.id)
    assert [(m.body_text, m.source, m.thread_rule) for m in msgs] == [
        ("My order is late", Channel.WIDGET, "widget-conversation"),
        ("Order 1234", Channel.WIDGET, "widget-conversation"),
    ]


def test_history_is_read_after_a_cursor(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start()
    for i in range(3):
        v.send(f"m{i}", f"client-000{i}")
    page = v.history().json()
    assert [m["body_text"] for m in page["messages"]] == ["m0", "m1", "m2"] and page["last_seq"] == 3
    assert [m["body_text"] for m in v.history(after=2).json()["messages"]] == ["m2"]
    assert v.history(after=3).json() == {"messages": [], "last_seq": 3}


@pytest.mark.parametrize("origin", ["https://example.org.evil.net", "https://example.org", "https://evil.test",
                                    "https://shop.example.com.evil.net", "http://shop.example.com"])
def test_origins_not_on_the_list_are_refused_on_every_endpoint(widget: WidgetWorld, origin: str) -> None:
    good = widget.visitor()
    good.start()
    bad = widget.visitor(origin=origin, token=good.token)
    assert bad.start().status_code == 403
    assert bad.send("hi", "client-0001").status_code == 403
    assert bad.history().status_code == 403


def test_our_own_frame_must_name_an_allowed_host_page(widget: WidgetWorld) -> None:
    body = {"inbox_id": widget.inbox_id}
    ok = widget.http.post("/widget/v1/conversations", json=body,
                          headers={"Origin": OWN, "X-Threadline-Embed-Origin": "https://a.example.org"})
    refused = widget.http.post("/widget/v1/conversations", json=body,
                               headers={"Origin": OWN, "X-Threadline-Embed-Origin": "https://example.org.evil.net"})
    unnamed = widget.http.post("/widget/v1/conversations", json=body, headers={"Origin": OWN})
    assert (ok.status_code, refused.status_code, unnamed.status_code) == (200, 403, 403)


def test_the_frame_page_names_its_allowed_ancestors(widget: WidgetWorld) -> None:
    r = widget.http.get(f"/widget/v1/frame?inbox={widget.inbox_id}&host=https://shop.example.com")
    assert r.status_code == 200
    assert "frame-ancestors https://shop.example.com https://*.example.org" in r.headers["content-security-policy"]
    assert widget.http.get(f"/widget/v1/frame?inbox={widget.inbox_id}&host=https://evil.test").status_code == 403


@pytest.mark.parametrize("mangle", ["forged", "expired", "missing", "other-key"])
def test_a_bad_token_gets_401(widget: WidgetWorld, mangle: str) -> None:
    v = widget.visitor()
    v.start()
    assert v.token is not None and v.conversation_id is not None
    claims = tokens.verify(tokens.token_key(widget.runtime.settings), v.token)
    if mangle == "forged":
        v.token = v.token[:-3] + ("AAA" if not v.token.endswith("AAA") else "BBB")
    elif mangle == "expired":
        v.token = tokens.issue(tokens.token_key(widget.runtime.settings), conversation_id=claims.conversation_id,
                               inbox_id=claims.inbox_id, version=claims.version, ttl=-1)
    elif mangle == "missing":
        v.token = None
    else:
        v.token = tokens.issue(b"k" * 32, conversation_id=claims.conversation_id, inbox_id=claims.inbox_id,
                               version=claims.version)
    assert v.send("hi", "client-0001").status_code == 401
    assert v.history().status_code == 401


def test_an_agent_reply_is_delivered_into_history_once(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start()
    v.send("<img src=x onerror=alert(1)>", "client-0001")
    drain_jobs(widget.runtime)
    message_id = _agent_replies(widget, "Hello! <b>we</b> are on it")
    drain_jobs(widget.runtime, include_delayed=True)
    drain_jobs(widget.runtime, include_delayed=True)
    page = v.history().json()["messages"]
    assert [(m["author"], m["body_text"]) for m in page] == [
        ("visitor", "<img src=x onerror=alert(1)>"), ("agent", "Hello! <b>we</b> are on it"),
    ]
    with tenant_scope(widget.runtime.factory, _tenant(widget)) as session:
        sent = session.get_one(Message, message_id)
        assert (sent.direction, sent.delivery_state) == (Direction.OUTBOUND, DeliveryState.SENT)


def test_an_agent_reply_reaches_the_visitors_socket(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start()
    v.send("hi", "client-0001")
    drain_jobs(widget.runtime)
    with widget.http.websocket_connect(f"/widget/v1/socket?inbox={widget.inbox_id}",
                                       headers={"Origin": v.origin}) as ws:
        ws.send_json({"type": "auth", "token": v.token})
        assert ws.receive_json() == {"type": "ready"}
        _agent_replies(widget, "live reply")
        started = time.monotonic()
        drain_jobs(widget.runtime, include_delayed=True)
        hint = ws.receive_json()
        assert hint == {"type": "message", "seq": 2}
        assert time.monotonic() - started < 5
    assert v.history(after=1).json()["messages"][0]["body_text"] == "live reply"


def test_the_socket_handshake_checks_the_origin(widget: WidgetWorld) -> None:
    with pytest.raises(WebSocketDisconnect) as refused:
        with widget.http.websocket_connect(f"/widget/v1/socket?inbox={widget.inbox_id}",
                                           headers={"Origin": "https://example.org.evil.net"}) as ws:
            ws.receive_json()
    assert refused.value.code == 4403


def test_the_socket_refuses_a_forged_token(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start()
    assert v.token is not None
    with widget.http.websocket_connect(f"/widget/v1/socket?inbox={widget.inbox_id}",
                                       headers={"Origin": v.origin}) as ws:
        ws.send_json({"type": "auth", "token": v.token[:-2] + "xx"})
        with pytest.raises(WebSocketDisconnect) as refused:
            ws.receive_json()
    assert refused.value.code == 4401


def test_resuming_rotates_the_token_and_keeps_the_conversation(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start()
    first_token, conversation = v.token, v.conversation_id
    v.send("hello", "client-0001")
    time.sleep(1.1)  # expiry has second resolution: the rotated token differs
    resumed = v.start().json()
    assert resumed["conversation_id"] == conversation and resumed["last_seq"] == 1
    assert resumed["token"] != first_token


def test_replies_sent_while_the_socket_was_down_arrive_once_in_order_on_reconnect(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start()
    v.send("hi", "client-0001")
    drain_jobs(widget.runtime)
    cursor = v.history().json()["last_seq"]
    socket_url = f"/widget/v1/socket?inbox={widget.inbox_id}"
    with widget.http.websocket_connect(socket_url, headers={"Origin": v.origin}) as ws:
        ws.send_json({"type": "auth", "token": v.token})
        assert ws.receive_json() == {"type": "ready"}
    for text in ("one", "two", "three"):  # the socket is gone: nobody hears the hints
        _agent_replies(widget, text)
        drain_jobs(widget.runtime, include_delayed=True)
    with widget.http.websocket_connect(socket_url, headers={"Origin": v.origin}) as ws:
        ws.send_json({"type": "auth", "token": v.token})
        assert ws.receive_json() == {"type": "ready"}  # the page catches up by cursor on every ready
        caught_up = v.history(after=cursor).json()["messages"]
    assert [m["body_text"] for m in caught_up] == ["one", "two", "three"]
    assert v.history(after=caught_up[-1]["seq"]).json()["messages"] == []


def test_a_nul_character_in_a_visitor_message_is_dropped_not_a_500(widget: WidgetWorld) -> None:
    v = widget.visitor()
    assert v.start(name="Ve\u0000ra").status_code == 200
    sent = v.send("Where\u0000 is it?", "client-0001")
    assert sent.status_code == 201, sent.text
    drain_jobs(widget.runtime)
    (ticket,) = _tickets(widget)
    with tenant_scope(widget.runtime.factory, ticket.tenant_id) as session:
        (msg,) = service.ticket_messages(session=session, ticket_id=ticket.id)
    assert (msg.body_text, msg.author_name) == ("Where is it?", "Vera")
