"""Events API listeners: an agent writes, edits or deletes a message in a ticket thread."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from slack_sdk.errors import SlackApiError

from bots.slack import blocks, files
from bots.slack.access import allowed_user
from bots.slack.ids import SURFACE, Reaction
from bots.slack.runtime import SlackDeps
from bots.surface import actions
from bots.surface.intents import ThreadIntent
from core.errors import UserError

log = logging.getLogger(__name__)

_IGNORED_SUBTYPES = {"bot_message", "channel_join", "channel_leave", "thread_broadcast", "channel_topic"}


def on_message(body: dict[str, Any], event: dict[str, Any], deps: SlackDeps) -> None:
    if body.get("event_id") and not actions.first_time(deps.surface, surface=SURFACE, event_id=body["event_id"]):
        return  # a Slack retry or a duplicate delivery
    subtype = event.get("subtype")
    if subtype in _IGNORED_SUBTYPES:
        return
    if subtype == "message_changed":
        _edited(event, deps)
    elif subtype == "message_deleted":
        _deleted(event, deps)
    elif subtype is None or subtype == "file_share":
        _new(event, deps)


def _is_human(message: dict[str, Any], deps: SlackDeps) -> bool:
    # The bot ignores its own and other bots' messages (loops, integrations).
    return bool(message.get("user")) and not message.get("bot_id") and message.get("user") != deps.bot_user_id


def _new(event: dict[str, Any], deps: SlackDeps) -> None:
    thread_ts, ts, channel = event.get("thread_ts"), str(event.get("ts", "")), str(event.get("channel", ""))
    if not thread_ts or thread_ts == ts or not _is_human(event, deps):
        return  # not a reply inside a thread
    ref = actions.ticket_for_thread(deps.surface, surface=SURFACE, channel=channel, thread_ref=thread_ts)
    for _ in range(6):
        if ref is not None:
            break
        # A card we posted a moment ago is committed right after Slack answered us: an agent
        # (or Slack's fast delivery) can win that race, so look again briefly before giving up.
        time.sleep(0.25)
        ref = actions.ticket_for_thread(deps.surface, surface=SURFACE, channel=channel, thread_ref=thread_ts)
    if ref is None:
        return  # a thread that is not a ticket
    try:
        user = allowed_user(deps, tenant_id=ref.tenant_id, channel=channel, user_id=event["user"])
        outcome = actions.handle_thread_message(deps.surface, ref=ref, user=user, channel=channel, ts=ts,
                                                text=event.get("text", ""), files=files.shared_files(event),
                                                files_job=files.FETCH_JOB)
    except Exception as exc:  # Slack has been acked: unless we tell the agent, the reply is lost
        _report_failure(event, deps, exc)
        return
    if outcome.intent in (ThreadIntent.NOTE, ThreadIntent.INTERNAL):
        deps.request_reaction(ref.tenant_id, channel, ts, Reaction.NOTE)


def _edited(event: dict[str, Any], deps: SlackDeps) -> None:
    message = event.get("message", {})
    thread_ts, channel = message.get("thread_ts"), str(event.get("channel", ""))
    if not thread_ts or not _is_human(message, deps):
        return
    ref = actions.ticket_for_thread(deps.surface, surface=SURFACE, channel=channel, thread_ref=thread_ts)
    if ref is not None:
        user = allowed_user(deps, tenant_id=ref.tenant_id, channel=channel, user_id=message["user"])
        actions.agent_edited(deps.surface, ref=ref, user=user, channel=channel,
                             ts=message["ts"], text=message.get("text", ""))


def _deleted(event: dict[str, Any], deps: SlackDeps) -> None:
    previous = event.get("previous_message", {})
    thread_ts, channel = previous.get("thread_ts"), str(event.get("channel", ""))
    if not thread_ts or not previous.get("user"):
        return
    ref = actions.ticket_for_thread(deps.surface, surface=SURFACE, channel=channel, thread_ref=thread_ts)
    if ref is not None:
        user = allowed_user(deps, tenant_id=ref.tenant_id, channel=channel, user_id=previous["user"])
        actions.agent_deleted(deps.surface, ref=ref, user=user, channel=channel,
                              ts=event.get("deleted_ts") or previous.get("ts", ""))


# ---- an agent's reply that could not be handled (issue 10): tell them, offer a retry ----


def _report_failure(event: dict[str, Any], deps: SlackDeps, exc: Exception) -> None:
    """Ephemeral to the author, in the thread. A refusal (UserError) says why; anything else gets a
    reference and a Retry button that re-reads their message (retrying a refusal would be pointless)."""
    channel, thread_ts = str(event.get("channel", "")), str(event.get("thread_ts", ""))
    try:
        if isinstance(exc, UserError):
            log.info("agent's thread reply refused", extra={"reason": str(exc)})
            deps.client.chat_postEphemeral(channel=channel, user=event["user"], thread_ts=thread_ts,
                                           text=f":x: Your reply was not handled: {exc}")  # our own words
            return
        ref_id = uuid.uuid4().hex[:10]
        log.exception("agent's thread reply failed", extra={"ref": ref_id})
        reason = f"something went wrong (reference {ref_id})."
        value = json.dumps({"channel": channel, "ts": str(event.get("ts", "")), "thread_ts": thread_ts})
        deps.client.chat_postEphemeral(channel=channel, user=event["user"], thread_ts=thread_ts,
                                       text=f":x: Your reply was not handled: {reason}",
                                       blocks=blocks.reply_failed_blocks(reason=reason, value=value))
    except SlackApiError:
        log.warning("could not show the failure to the agent", extra={"channel": channel})


def retry_reply(body: dict[str, Any], deps: SlackDeps) -> None:
    """Retry button: read the agent's message again from Slack and handle it as if it just came."""
    where = json.loads(body["actions"][0]["value"])
    resp = deps.client.conversations_replies(channel=where["channel"], ts=where["thread_ts"],
                                             latest=where["ts"], oldest=where["ts"], inclusive=True, limit=1)
    messages: list[dict[str, Any]] = resp.get("messages") or []
    original = next((m for m in messages if m.get("ts") == where["ts"]), None)
    clicker = (body.get("user") or {}).get("id")
    if original is None or original.get("user") != clicker:
        raise UserError("that message is gone (or is not yours), so there is nothing to retry")
    _new({**original, "channel": where["channel"], "thread_ts": where["thread_ts"]}, deps)
