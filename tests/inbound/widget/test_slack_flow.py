"""A web chat ticket in Slack: the card says "web chat", and an agent's thread reply reaches the
visitor's history (the same undo window and delivery path as mail, through `widget.deliver`)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import update

from core.db.session import system_scope
from core.tenancy.models import Inbox
from inbound.widget.api import mount
from tests.bots.slack.conftest import CHANNEL, SlackWorld, fake_slack, world  # noqa: F401 (fixtures)
from tests.inbound.widget.conftest import ALLOWED, Visitor
from tests.support.jobs import drain_jobs


def _visitor(world: SlackWorld) -> Visitor:  # noqa: F811
    app: Any = world.http.app
    if not any(getattr(r, "path", "").startswith("/widget/v1") for r in app.routes):
        mount(app, world.runtime.settings)
    with system_scope(world.runtime.factory) as session:
        inbox = session.query(Inbox).filter(Inbox.slack_channel_id == CHANNEL).one()
        session.execute(update(Inbox).where(Inbox.id == inbox.id).values(widget_config={"allowed_origins": ALLOWED}))
        return Visitor(world.http, str(inbox.id))


def test_a_widget_ticket_card_says_web_chat_and_the_agent_reply_reaches_the_visitor(world: SlackWorld) -> None:  # noqa: F811
    v = _visitor(world)
    v.start()
    v.send("Where is my parcel?", "client-0001")
    drain_jobs(world.runtime)
    card = world.fake.messages(channel=CHANNEL)[0]
    assert {"type": "mrkdwn", "text": "*Via*\nweb chat"} in card["blocks"][0]["fields"]
    assert {"type": "mrkdwn", "text": "*Customer*\nanonymous web chat visitor"} in card["blocks"][0]["fields"]
    assert world.agent_says("It ships today", thread_ts=world.card_ts(), ts="1700000100.000100") == 200
    deadline = 50
    while deadline and len(v.history().json()["messages"]) < 2:
        drain_jobs(world.runtime, include_delayed=True)
        deadline -= 1
    assert [(m["author"], m["body_text"]) for m in v.history().json()["messages"]] == [
        ("visitor", "Where is my parcel?"), ("agent", "It ships today"),
    ]


def test_a_visitor_upload_is_listed_in_the_slack_thread_like_a_mail_attachment(world: SlackWorld) -> None:  # noqa: F811
    v = _visitor(world)
    v.start()
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    ref = world.http.post("/widget/v1/attachments", files={"file": ("broken-box.png", png, "image/png")},
                          headers=v.headers()).json()["ref"]
    world.http.post("/widget/v1/messages", json={"client_message_id": "client-0001", "text": "It came like this",
                                                 "attachments": [ref]}, headers=v.headers())
    drain_jobs(world.runtime)
    posted = json.dumps(world.fake.messages(channel=CHANNEL))
    assert "broken-box.png (108 B)" in posted


def test_a_named_visitor_without_an_email_is_named_on_the_card(world: SlackWorld) -> None:  # noqa: F811
    v = _visitor(world)
    v.start(name="Dana Ortiz")
    v.send("Hello?", "client-0001")
    drain_jobs(world.runtime)
    card = world.fake.messages(channel=CHANNEL)[0]
    assert {"type": "mrkdwn", "text": "*Customer*\nDana Ortiz (no email)"} in card["blocks"][0]["fields"]
