"""A Threadline wired to the fake Slack Web API and an SMTP sink, with one Slack-bound inbox."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import update

from admin_api.app import create_app
from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.models import Inbox
from tests.conftest import make_tenant
from tests.support.fake_slack import FakeSlack
from tests.support.slack_signing import event_body, message_event, sign
from tests.support.smtp_sink import smtp_sink  # noqa: F401 (fixture)

SECRET = "test-signing-secret"
CHANNEL = "C0SUPPORT"
AGENT = "U0AGENT"


@pytest.fixture()
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.users[AGENT] = {"real_name": "Ann Agent", "profile": {"real_name": "Ann Agent", "email": "ann@acme.test"}}
        yield fake


@dataclass
class SlackWorld:
    runtime: Runtime
    fake: FakeSlack
    sink: Any
    http: TestClient
    _seq: int = 0

    def post_event(self, event: dict[str, Any], *, event_id: str | None = None, secret: str = SECRET) -> int:
        self._seq += 1
        body = event_body(event, event_id or f"Ev{self._seq:06d}")
        return self.http.post("/slack/events", content=body, headers=sign(secret, body)).status_code

    def agent_says(self, text: str, *, thread_ts: str, ts: str, event_id: str | None = None) -> int:
        return self.post_event(message_event(CHANNEL, AGENT, text, ts, thread_ts=thread_ts), event_id=event_id)

    def post_form(self, path: str, body: bytes, *, secret: str = SECRET) -> int:
        return self.http.post(path, content=body, headers=sign(secret, body)).status_code

    def card_ts(self) -> str:
        parents = [m for m in self.fake.messages(channel=CHANNEL) if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
        assert parents, "no ticket card was posted"
        return str(parents[-1]["ts"])


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Bolt runs listeners after acking, in its own threads: wait for their effect."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.fixture()
def world(runtime: Runtime, fake_slack: FakeSlack, smtp_sink: Any) -> Iterator[SlackWorld]:  # noqa: F811
    s = runtime.settings
    s.slack_bot_token = SecretStr("xoxb-test-token")
    s.slack_signing_secret = SecretStr(SECRET)
    s.slack_api_url = fake_slack.api_url
    s.undo_seconds = 0
    s.outbound_smtp_url = SecretStr(smtp_sink.url)
    _, inbox = make_tenant(runtime, address="help@acme.test")
    with system_scope(runtime.factory) as session:
        session.execute(update(Inbox).where(Inbox.id == inbox.id).values(slack_channel_id=CHANNEL))
    with TestClient(create_app(runtime)) as http:
        yield SlackWorld(runtime, fake_slack, smtp_sink, http)
