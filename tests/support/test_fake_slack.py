"""The Slack fake and signing helpers, exercised through the real slack_sdk and slack_bolt."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from tests.support.fake_slack import FakeSlack
from tests.support.slack_signing import (
    block_action,
    command_body,
    event_body,
    interaction_body,
    message_event,
    sign,
)

TOKEN = "xoxb-test-token"
SECRET = "shh-signing-secret"


@pytest.fixture()
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture()
def client(fake: FakeSlack) -> WebClient:
    # No retry handlers: WebClient otherwise retries connection errors once by default.
    return WebClient(token=TOKEN, base_url=fake.api_url, timeout=5, retry_handlers=[])


def _error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> Any:
    return excinfo.value.response["error"]


def test_auth_test_identifies_the_bot(client: WebClient, fake: FakeSlack) -> None:
    resp = client.auth_test()
    assert (resp["user_id"], resp["bot_id"], resp["team_id"]) == ("U0BOT", "B0BOT", "T0TEAM")
    assert fake.calls_to("auth.test")[0].token == TOKEN


def test_post_reply_update_delete(client: WebClient, fake: FakeSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*New ticket*"}}]
    parent = client.chat_postMessage(channel="C1", text="New ticket", blocks=blocks)
    reply = client.chat_postMessage(channel="C1", text="On it", thread_ts=parent["ts"])
    assert parent["channel"] == "C1" and float(reply["ts"]) > float(parent["ts"])
    assert parent["message"]["blocks"] == blocks and parent["message"]["bot_id"] == "B0BOT"
    assert reply["message"]["thread_ts"] == parent["ts"]

    client.chat_update(channel="C1", ts=parent["ts"], text="Ticket #1 (closed)")
    thread = fake.messages(channel="C1", thread_ts=parent["ts"])
    assert [m["text"] for m in thread] == ["Ticket #1 (closed)", "On it"]
    assert thread[0]["blocks"] == blocks  # chat.update keeps fields it was not given

    client.chat_delete(channel="C1", ts=reply["ts"])
    assert [m["ts"] for m in fake.messages(thread_ts=parent["ts"])] == [parent["ts"]]
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C1", ts="1.000000", text="x")
    assert _error(exc) == "message_not_found"
    with pytest.raises(SlackApiError) as exc, pytest.warns(UserWarning):  # slack_sdk warns about missing text
        client.chat_postMessage(channel="C1")
    assert _error(exc) == "no_text"


def test_form_bodies_have_json_fields_decoded(client: WebClient, fake: FakeSlack) -> None:
    blocks = [{"type": "divider"}]
    client.api_call("chat.postMessage", params={"channel": "C2", "text": "hi", "blocks": json.dumps(blocks)})
    call = fake.calls_to("chat.postMessage")[0]
    assert call.args["blocks"] == blocks and call.args["text"] == "hi"
    assert fake.messages(channel="C2")[0]["blocks"] == blocks


def test_reaction_errors_match_slack(client: WebClient, fake: FakeSlack) -> None:
    client.reactions_add(channel="C1", timestamp="1700000000.000001", name="eyes")
    with pytest.raises(SlackApiError) as exc:
        client.reactions_add(channel="C1", timestamp="1700000000.000001", name="eyes")
    assert _error(exc) == "already_reacted"
    client.reactions_remove(channel="C1", timestamp="1700000000.000001", name="eyes")
    with pytest.raises(SlackApiError) as exc:
        client.reactions_remove(channel="C1", timestamp="1700000000.000001", name="eyes")
    assert _error(exc) == "no_reaction"


def test_invalid_token_and_unknown_method(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as exc:
        WebClient(token="xoxb-wrong", base_url=fake.api_url).chat_postMessage(channel="C1", text="x")
    assert _error(exc) == "invalid_auth" and exc.value.response.status_code == 200
    with pytest.raises(SlackApiError) as exc:
        WebClient(token=TOKEN, base_url=fake.api_url).api_call("nope.nothing")
    assert _error(exc) == "unknown_method"


def test_lookups_permalink_ephemeral_and_views(client: WebClient, fake: FakeSlack) -> None:
    assert client.users_info(user="U7")["user"]["profile"]["email"] == "U7@example.test"
    fake.users["U8"] = {"real_name": "Ada Lovelace", "profile": {"email": "ada@example.org"}}
    user = client.users_info(user="U8")["user"]
    assert (user["real_name"], user["profile"]["email"], user["profile"]["real_name"]) == (
        "Ada Lovelace",
        "ada@example.org",
        "Ada Lovelace",
    )
    assert client.conversations_info(channel="C1")["channel"]["is_channel"] is True

    parent = client.chat_postMessage(channel="C1", text="p")
    reply = client.chat_postMessage(channel="C1", text="r", thread_ts=parent["ts"])
    link = client.chat_getPermalink(channel="C1", message_ts=reply["ts"])["permalink"]
    assert link.endswith(f"/archives/C1/p{reply['ts'].replace('.', '')}?thread_ts={parent['ts']}&cid=C1")
    assert client.chat_postEphemeral(channel="C1", user="U7", text="only you")["message_ts"]

    modal = {"type": "modal", "callback_id": "triage", "title": {"type": "plain_text", "text": "Triage"}, "blocks": []}
    view = client.views_open(trigger_id="T1", view=modal)["view"]
    updated = client.views_update(view_id=view["id"], hash=view["hash"], view=modal | {"private_metadata": "42"})
    assert updated["view"]["id"] == view["id"] and updated["view"]["private_metadata"] == "42"
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id=view["id"], hash=view["hash"], view=modal)  # stale hash
    assert _error(exc) == "hash_conflict"


def test_rate_limit_is_retried_by_slack_sdk(client: WebClient, fake: FakeSlack) -> None:
    fake.rate_limit_next("chat.postMessage", retry_after=0)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="x")
    assert exc.value.response.status_code == 429 and exc.value.response.headers["Retry-After"] == "0"
    assert _error(exc) == "ratelimited"

    fake.rate_limit_next("chat.postMessage", times=2, retry_after=0)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    assert client.chat_postMessage(channel="C1", text="finally")["ok"]
    answers = [c.response.get("error", "ok") for c in fake.calls if c.response]
    assert answers == ["ratelimited", "ratelimited", "ratelimited", "ok"]
    assert [m["text"] for m in fake.messages()] == ["finally"]


def test_dropped_connection_is_retried_by_slack_sdk(client: WebClient, fake: FakeSlack) -> None:
    fake.drop_connections_next()
    with pytest.raises(ConnectionError):  # http.client.RemoteDisconnected
        client.auth_test()

    client.retry_handlers.append(ConnectionErrorRetryHandler(max_retry_count=1))
    fake.drop_connections_next()
    assert client.chat_postMessage(channel="C1", text="after drop")["ok"]
    assert [c.response is None for c in fake.calls_to("chat.postMessage")] == [True, False]


def test_fail_next_wait_for_and_reset(client: WebClient, fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="x")
    assert _error(exc) == "channel_not_found"

    threading.Timer(0.2, lambda: client.chat_postMessage(channel="C9", text="late")).start()
    assert fake.wait_for(lambda f: f.messages(channel="C9"), timeout=5)[0]["text"] == "late"
    with pytest.raises(AssertionError, match="chat.postMessage"):
        fake.wait_for(lambda f: f.messages(channel="C404"), timeout=0.1)
    fake.reset()
    assert fake.calls == [] and fake.messages() == []


def test_signature_verifier_accepts_sign_and_rejects_tampering() -> None:
    verifier = SignatureVerifier(SECRET)
    body = event_body(message_event("C1", "U1", "hello", "1700000000.000001"), event_id="Ev1")
    headers = sign(SECRET, body)
    assert headers["Content-Type"] == "application/json"
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body.replace(b"hello", b"hullo"), headers)
    stale = sign(SECRET, body, timestamp=int(time.time()) - 301)
    assert not verifier.is_valid_request(body, stale)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)


def test_bolt_app_end_to_end(fake: FakeSlack) -> None:
    """Signed events, actions and commands dispatched into a bolt App that talks to the fake."""
    app = App(signing_secret=SECRET, client=WebClient(token=TOKEN, base_url=fake.api_url))
    clicks: list[str] = []

    @app.event("message")
    def on_message(event: dict[str, Any], say: Any) -> None:
        say(text=f"got: {event['text']}", thread_ts=event["ts"])

    @app.action("claim")
    def on_claim(ack: Any, body: dict[str, Any]) -> None:
        ack()
        clicks.append(body["actions"][0]["value"])

    @app.command("/threadline")
    def on_command(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        ack()
        respond(f"echo {command['text']}")

    def dispatch(body: bytes, secret: str = SECRET) -> int:
        headers: dict[str, str | Sequence[str]] = {**sign(secret, body)}
        return app.dispatch(BoltRequest(body=body.decode(), headers=headers)).status

    assert dispatch(event_body(message_event("C1", "U1", "help!", "1700000001.000001"), "Ev1")) == 200
    reply = fake.wait_for(lambda f: f.messages(channel="C1", thread_ts="1700000001.000001"))[0]
    assert reply["text"] == "got: help!"

    assert dispatch(interaction_body(block_action("claim", "ticket-7", "U1", "C1", reply["ts"]))) == 200
    assert clicks == ["ticket-7"]

    assert dispatch(command_body(text="status", response_url=fake.response_url())) == 200
    call = fake.wait_for(lambda f: f.calls_to("response_url"))[0]
    assert call.args["text"] == "echo status"

    forged = event_body(message_event("C1", "U1", "x", "1700000002.000001"), "Ev2")
    assert dispatch(forged, secret="wrong") == 401
