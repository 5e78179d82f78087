"""build_slack_app: a Bolt app whose listeners are the plain functions in listeners/.

Every listener acks first (Slack wants an answer within 3 s), then calls one surface service.
One error path: our UserErrors become an ephemeral message the agent sees; anything else is
logged with a reference id that the agent is shown too.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bots.slack.client import slack_client
from bots.slack.ids import ActionId, CallbackId
from bots.slack.listeners import actions as action_listeners
from bots.slack.listeners import commands, events
from bots.slack.listeners import views as view_listeners
from bots.slack.runtime import SlackDeps
from bots.slack.users import UserDirectory
from bots.surface.deps import SurfaceDeps
from core.errors import ConfigurationError, UserError

log = logging.getLogger(__name__)


def _tell(deps: SlackDeps, body: dict[str, Any], text: str) -> None:
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    if not (user and channel):
        return
    try:
        deps.client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError:
        log.warning("could not show an ephemeral message", extra={"channel": channel})


def guarded(deps: SlackDeps, body: dict[str, Any], work: Callable[[], str | None]) -> None:
    try:
        answer = work()
        if answer:
            _tell(deps, body, answer)
    except UserError as exc:
        log.info("agent action refused", extra={"reason": str(exc)})
        _tell(deps, body, f":warning: {exc}")
    except Exception:  # unknown: logged with a reference the agent can quote
        ref = uuid.uuid4().hex[:10]
        log.exception("slack listener failed", extra={"ref": ref})
        _tell(deps, body, f":x: Something went wrong (reference {ref}).")


def build_slack_app(surface: SurfaceDeps, *, socket_mode: bool = False) -> tuple[App, SlackDeps]:
    s = surface.settings
    if s.slack_bot_token is None:
        raise ConfigurationError("SLACK_BOT_TOKEN is not set")
    if not socket_mode and s.slack_signing_secret is None:
        raise ConfigurationError("SLACK_SIGNING_SECRET is not set (needed to verify Slack's HTTP requests)")
    client = slack_client(s)
    app = App(
        client=client,
        signing_secret=s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else "socket-mode",
        token_verification_enabled=False,  # no auth.test at import/boot; the first call checks the token
        request_verification_enabled=not socket_mode,
        raise_error_for_unhandled_request=False,
        process_before_response=False,
    )
    try:
        bot_user_id = client.auth_test().get("user_id")
    except SlackApiError as exc:
        raise ConfigurationError(f"Slack rejected SLACK_BOT_TOKEN: {exc.response.get('error')}") from None
    deps = SlackDeps(surface, client, UserDirectory(client), bot_user_id)

    @app.event("message")
    def _message(ack: Ack, body: dict[str, Any], event: dict[str, Any]) -> None:
        ack()
        guarded(deps, {}, lambda: events.on_message(body, event, deps))

    @app.event(re.compile(r"^(app_mention|reaction_added|reaction_removed|member_joined_channel)$"))
    def _ignored(ack: Ack) -> None:
        ack()

    button_handlers: dict[str, Callable[[dict[str, Any], SlackDeps], None]] = {
        ActionId.ASSIGN_ME: action_listeners.assign_me,
        ActionId.PRIORITY: action_listeners.priority,
        ActionId.RESOLVE: action_listeners.resolve,
        ActionId.REOPEN: action_listeners.reopen,
        ActionId.UNDO: action_listeners.undo,
        ActionId.MAKE_INTERNAL: action_listeners.make_internal,
        ActionId.VIEW_ORIGINAL: action_listeners.view_original,
        ActionId.REPLY: action_listeners.open_reply_modal,
    }
    def _button(handler: Callable[[dict[str, Any], SlackDeps], None]) -> Callable[..., None]:
        def listener(ack: Ack, body: dict[str, Any]) -> None:
            ack()
            guarded(deps, body, lambda: handler(body, deps))

        return listener

    for action_id, handler in button_handlers.items():
        app.action(action_id)(_button(handler))

    @app.view(CallbackId.REPLY_MODAL)
    def _reply(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        text = (view["state"]["values"].get("reply", {}).get("text", {}).get("value") or "").strip()
        if not text:
            ack(response_action="errors", errors={"reply": "Write the reply first."})
            return
        ack()
        guarded(deps, body, lambda: view_listeners.reply_submitted(body, view, deps))

    @app.command("/threadline")
    def _command(ack: Ack, body: dict[str, Any], command: dict[str, Any]) -> None:
        ack()
        guarded(deps, body, lambda: commands.threadline(command, deps))

    @app.error
    def _errors(error: Exception, body: dict[str, Any]) -> None:
        ref = uuid.uuid4().hex[:10]
        log.error("slack request failed", extra={"ref": ref, "error": f"{type(error).__name__}: {error}"})

    return app, deps
