"""Build and sign inbound Slack requests (Events API, interactivity, slash commands) like Slack does.

``sign()`` gives the headers Slack sends with every request to our app; the builders produce the
documented payload shapes so bolt listeners see what production would show them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

TEAM_ID = "T0TEAM"
TEAM_DOMAIN = "threadline-test"
APP_ID = "A0APP"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
VERIFICATION_TOKEN = "legacy-verification-token"  # deprecated field Slack still sends
RESPONSE_URL = "https://hooks.slack.com/actions/T0TEAM/1/fake"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends: v0 HMAC-SHA256 signature of ``v0:{timestamp}:{body}``, plus Content-Type."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), b"v0:%d:%s" % (ts, body), hashlib.sha256).hexdigest()
    is_json = body.lstrip().startswith(b"{")
    return {
        "Content-Type": "application/json" if is_json else "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={digest}",
    }


def event_body(event: dict[str, Any], event_id: str, team_id: str = TEAM_ID, api_app_id: str = APP_ID) -> bytes:
    """The Events API ``event_callback`` envelope, as JSON."""
    envelope = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(float(event.get("event_ts") or event.get("ts") or time.time())),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }
    return json.dumps(envelope).encode()


def interaction_body(payload: dict[str, Any]) -> bytes:
    """Interactivity requests (block_actions, view_submission, ...) are form-encoded ``payload=<json>``."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def command_body(
    command: str = "/threadline",
    text: str = "",
    user_id: str = "U0USER",
    channel_id: str = "C0CHAN",
    trigger_id: str = "T1",
    team_id: str = TEAM_ID,
    user_name: str | None = None,
    channel_name: str | None = None,
    response_url: str = RESPONSE_URL,
    api_app_id: str = APP_ID,
) -> bytes:
    """The form-encoded fields Slack posts for a slash command."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name or f"channel-{channel_id.lower()}",
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return urlencode(fields).encode()


def message_event(
    channel: str,
    user: str,
    text: str,
    ts: str,
    thread_ts: str | None = None,
    subtype: str | None = None,
    bot_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``message`` event as delivered inside ``event_callback``; ``extra`` overrides/extends fields."""
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "team": TEAM_ID,
        "channel_type": {"D": "im", "G": "group"}.get(channel[:1], "channel"),
        "blocks": [
            {
                "type": "rich_text",
                "block_id": "rt1",
                "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
            }
        ],
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    if subtype:
        event["subtype"] = subtype
    if bot_id:
        event["bot_id"] = bot_id
    if not subtype and not bot_id:
        event["client_msg_id"] = f"msg-{ts}"  # only human-typed messages carry one
    event.update(extra)
    return event


def _user(user_id: str, team_id: str) -> dict[str, Any]:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id}


def block_action(
    action_id: str,
    value: str,
    user_id: str,
    channel: str,
    message_ts: str,
    trigger_id: str = "T1",
    block_id: str = "actions",
    thread_ts: str | None = None,
    message: dict[str, Any] | None = None,
    response_url: str = RESPONSE_URL,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a button click on a (bot) message; send with ``interaction_body``."""
    if message is None:
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": "", "ts": message_ts, "blocks": []}
        if thread_ts:
            message["thread_ts"] = thread_ts
    thread_ts = thread_ts or message.get("thread_ts")
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    if thread_ts:
        container["thread_ts"] = thread_ts
    return {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": f"channel-{channel.lower()}"},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": action_id, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def view_submission(
    callback_id: str,
    values: dict[str, dict[str, Any]],
    user_id: str,
    private_metadata: str = "",
    view_id: str = "V1",
    trigger_id: str = "T1",
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
) -> dict[str, Any]:
    """A ``view_submission`` payload; ``values`` is ``view.state.values`` ({block_id: {action_id: {...}}})."""
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user(user_id, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "blocks": [],
            "state": {"values": values},
            "hash": f"{view_id}.hash",
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": api_app_id,
            "bot_id": BOT_ID,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
