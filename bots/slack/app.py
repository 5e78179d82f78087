"""build_slack_app: a Bolt app whose listeners are the plain functions in listeners/.

Every listener acks first (Slack wants an answer within 3 s), then calls one surface service.
One error path: our UserErrors become an ephemeral message the agent sees; anything else is
logged with a reference id that the agent is shown too.

One workspace (SLACK_BOT_TOKEN) or many (OAuth installs, SLACK_CLIENT_ID/_SECRET): either way an
`authorize` function names the bot per request, and listeners get the deps of that request's
workspace (its client, its users, its bot user id).
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from slack_bolt import Ack, App, BoltContext, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bots.slack.client import api_client, slack_client
from bots.slack.ids import SURFACE, ActionId, CallbackId
from bots.slack.installations import bot_for_team, oauth_configured
from bots.slack.listeners import actions as action_listeners
from bots.slack.listeners import commands, events
from bots.slack.listeners import drafts as draft_listeners
from bots.slack.listeners import held as held_listeners
from bots.slack.listeners import views as view_listeners
from bots.slack.runtime import SlackDeps
from bots.slack.users import UserDirectory
from bots.surface import actions
from bots.surface.deps import SurfaceDeps
from core.errors import ConfigurationError, UserError

log = logging.getLogger(__name__)

TENANT_KEY = "threadline_tenant_id"  # set on the Bolt context by the multi-workspace authorize
_OTHER_TENANT = ":warning: This channel belongs to another Threadline tenant than this workspace."


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


class _Directories:
    """One user cache per workspace bot (multi-workspace mode)."""

    def __init__(self) -> None:
        self._by_bot: dict[tuple[str | None, str | None], UserDirectory] = {}
        self._lock = threading.Lock()

    def get(self, team_id: str | None, client: WebClient) -> UserDirectory:
        with self._lock:
            return self._by_bot.setdefault((team_id, client.token), UserDirectory(client))


def _single_workspace(surface: SurfaceDeps) -> tuple[SlackDeps, Callable[..., AuthorizeResult]]:
    client = slack_client(surface.settings)
    try:
        who = client.auth_test()
    except SlackApiError as exc:
        raise ConfigurationError(f"Slack rejected SLACK_BOT_TOKEN: {exc.response.get('error')}") from None
    token = str(client.token)

    # An authorize function even here: given only a token, Bolt would drop it in favour of its own
    # file-based OAuth store whenever SLACK_CLIENT_ID/_SECRET are in the environment too.
    def authorize() -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=who.get("enterprise_id"), team_id=who.get("team_id"),
                               bot_user_id=who.get("user_id"), bot_id=who.get("bot_id"), bot_token=token)

    return SlackDeps(surface, client, UserDirectory(client), who.get("user_id"), team_id=who.get("team_id")), authorize


def _multi_workspace(surface: SurfaceDeps) -> Callable[..., AuthorizeResult | None]:
    def authorize(enterprise_id: str | None, team_id: str | None, context: BoltContext) -> AuthorizeResult | None:
        bot = bot_for_team(surface.settings, surface.factory, team_id=team_id, enterprise_id=enterprise_id)
        if bot is None:
            return None  # Bolt answers "please install this app"
        context[TENANT_KEY] = bot.tenant_id
        return AuthorizeResult(enterprise_id=bot.enterprise_id, team_id=bot.team_id, bot_user_id=bot.bot_user_id,
                               bot_id=bot.bot_id, bot_token=bot.token)

    return authorize


def _channel_of(body: dict[str, Any]) -> str | None:
    channel = body.get("channel")
    return ((body.get("event") or {}).get("channel") or (channel.get("id") if isinstance(channel, dict) else None)
            or body.get("channel_id") or (body.get("container") or {}).get("channel_id"))


def _tenant_guard(surface: SurfaceDeps) -> Callable[..., Any]:
    """Bolt middleware (multi-workspace): a workspace acts only for its own tenant. A channel bound to
    another tenant's inbox (or the one-bound-tenant fallback pointing elsewhere) is refused."""

    def guard(context: BoltContext, body: dict[str, Any], next: Callable[[], BoltResponse]) -> Any:
        expected = context.get(TENANT_KEY)
        if expected is None:
            return next()  # no authorization needed (url_verification, ssl_check, ...)
        channel = _channel_of(body)
        owner = actions.tenant_for_channel(surface, surface=SURFACE, channel=channel)
        if owner is None or owner == expected:
            return next()  # unbound (a DM): the listener uses the installation's tenant
        log.warning("slack request for another tenant's channel refused",
                    extra={"team": context.team_id, "channel": channel})
        return BoltResponse(status=200, body=_OTHER_TENANT)

    return guard


def build_slack_app(surface: SurfaceDeps, *, socket_mode: bool = False) -> tuple[App, SlackDeps]:
    s = surface.settings
    multi = s.slack_bot_token is None
    if multi and not oauth_configured(s):
        raise ConfigurationError("SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET "
                                 "(workspaces installed over OAuth) must be set")
    if not socket_mode and s.slack_signing_secret is None:
        raise ConfigurationError("SLACK_SIGNING_SECRET is not set (needed to verify Slack's HTTP requests)")
    authorize: Callable[..., AuthorizeResult | None]
    if multi:
        base = api_client(s)
        deps = SlackDeps(surface, base, UserDirectory(base), None, single_workspace=False)
        authorize = _multi_workspace(surface)
    else:
        deps, authorize = _single_workspace(surface)
    app = App(
        client=api_client(s),  # a template: Bolt copies it per request with the authorized token
        authorize=cast(Callable[..., AuthorizeResult], authorize),  # None (not installed) is allowed at runtime
        signing_secret=s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else "socket-mode",
        request_verification_enabled=not socket_mode,
        raise_error_for_unhandled_request=False,
        process_before_response=False,
    )
    directories = _Directories()

    def deps_for(context: BoltContext) -> SlackDeps:
        """This request's workspace: its client, users and bot user id (multi-workspace mode)."""
        if not multi or context.client is None:
            return deps
        client = context.client
        return replace(deps, client=client, users=directories.get(context.team_id, client),
                       bot_user_id=context.bot_user_id, team_id=context.team_id,
                       workspace_tenant=context.get(TENANT_KEY))

    if multi:
        app.middleware(_tenant_guard(surface))

    @app.event("message")
    def _message(ack: Ack, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        ack()
        d = deps_for(context)
        guarded(d, {}, lambda: events.on_message(body, event, d))

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
        ActionId.SEND_DRAFT: draft_listeners.send,
        ActionId.EDIT_DRAFT: draft_listeners.open_edit,
        ActionId.DISCARD_DRAFT: draft_listeners.discard,
        ActionId.REGENERATE_DRAFT: draft_listeners.regenerate,
        ActionId.RELEASE_HELD: held_listeners.release,
        ActionId.RETRY_REPLY: events.retry_reply,
    }

    def _button(handler: Callable[[dict[str, Any], SlackDeps], None]) -> Callable[..., None]:
        def listener(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
            ack()
            d = deps_for(context)
            guarded(d, body, lambda: handler(body, d))

        return listener

    for action_id, handler in button_handlers.items():
        app.action(action_id)(_button(handler))

    def _modal(empty: str, handler: Callable[[dict[str, Any], dict[str, Any], SlackDeps], None]) -> Callable[..., None]:
        """A modal's submission: refused in the modal while its text is empty (`empty` says why)."""
        def listener(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
            text = (view["state"]["values"].get("reply", {}).get("text", {}).get("value") or "").strip()
            if not text:
                ack(response_action="errors", errors={"reply": empty})
                return
            ack()
            d = deps_for(context)
            guarded(d, body, lambda: handler(body, view, d))

        return listener

    app.view(CallbackId.REPLY_MODAL)(_modal("Write the reply first.", view_listeners.reply_submitted))
    app.view(CallbackId.EDIT_DRAFT_MODAL)(_modal("The answer is empty.", draft_listeners.edit_submitted))

    @app.command("/threadline")
    def _command(ack: Ack, body: dict[str, Any], command: dict[str, Any], context: BoltContext) -> None:
        ack()
        d = deps_for(context)
        guarded(d, body, lambda: commands.threadline(command, d))

    @app.error
    def _errors(error: Exception, body: dict[str, Any]) -> None:
        ref = uuid.uuid4().hex[:10]
        log.error("slack request failed", extra={"ref": ref, "error": f"{type(error).__name__}: {error}"})

    return app, deps
