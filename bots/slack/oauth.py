"""`GET /slack/install` and `GET /slack/oauth_redirect`: install Threadline into a workspace for a tenant.

install: a valid install link (bots.slack.installations) → a fresh single-use state bound to the
tenant, also set as a cookie, → 302 to Slack's consent page. redirect: the state must match the
cookie (the flow finishes in the browser that started it) and is consumed once; the code is
exchanged for the bot token, which is stored encrypted. Refusals are plain 400 pages.
"""

from __future__ import annotations

import html
import logging
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bots.slack.client import api_client, slack_client
from bots.slack.installations import (
    STATE_TTL,
    SlackBot,
    consume_state,
    create_state,
    read_install_token,
    save_installation,
)
from core.crypto import SecretBox
from core.errors import InvalidInput, UserError
from core.settings import Settings

log = logging.getLogger(__name__)

AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"
STATE_COOKIE = "threadline_slack_oauth_state"
# The bot scopes of manifest.yaml (a test keeps the two equal; the manifest is not shipped).
BOT_SCOPES = ("chat:write", "files:read", "channels:history", "groups:history", "reactions:write", "users:read",
              "users:read.email", "channels:read", "groups:read", "usergroups:read", "commands")


def redirect_uri(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}/slack/oauth_redirect"


def _page(status: int, title: str, text: str) -> HTMLResponse:
    body = (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>")
    return HTMLResponse(body, status_code=status)


def _exchange(settings: Settings, *, tenant_id: uuid.UUID, code: str) -> tuple[SlackBot, str, str | None, str]:
    """oauth.v2.access → (bot, scopes, installer, workspace name). Raises SlackApiError or UserError."""
    assert settings.slack_client_id is not None and settings.slack_client_secret is not None
    resp = api_client(settings).oauth_v2_access(
        client_id=settings.slack_client_id, client_secret=settings.slack_client_secret.get_secret_value(),
        code=code, redirect_uri=redirect_uri(settings),
    )
    team = resp.get("team") or {}
    if resp.get("is_enterprise_install") or not team.get("id"):
        raise InvalidInput("organization-wide installs are not supported: install Threadline into a workspace")
    token = resp.get("access_token")
    if resp.get("token_type") != "bot" or not token or not resp.get("bot_user_id"):
        raise InvalidInput("Slack did not return a bot token: check the app's bot scopes")
    bot_id = slack_client(settings, token=token).auth_test().get("bot_id")  # also proves the token works
    bot = SlackBot(tenant_id=tenant_id, team_id=team["id"], enterprise_id=(resp.get("enterprise") or {}).get("id"),
                   bot_user_id=resp["bot_user_id"], bot_id=bot_id, token=token)
    return bot, str(resp.get("scope") or ""), (resp.get("authed_user") or {}).get("id"), str(team.get("name") or "")


def mount_oauth(app: Any, settings: Settings, factory: sessionmaker[Session]) -> None:
    secure_cookie = settings.public_url.startswith("https://")

    def install(t: str = "") -> Response:
        try:
            state = create_state(factory, tenant_id=read_install_token(settings, t))
        except UserError as exc:
            return _page(400, "This install link does not work", str(exc))
        query = urlencode({"client_id": settings.slack_client_id, "scope": ",".join(BOT_SCOPES), "state": state,
                           "redirect_uri": redirect_uri(settings)})
        resp = RedirectResponse(f"{AUTHORIZE_URL}?{query}", status_code=302)
        resp.set_cookie(STATE_COOKIE, state, max_age=int(STATE_TTL.total_seconds()), path="/slack", httponly=True,
                        secure=secure_cookie, samesite="lax")
        return resp

    def oauth_redirect(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
        try:
            if not state or request.cookies.get(STATE_COOKIE) != state:
                raise InvalidInput("this installation was not started in this browser: open the install link again")
            tenant_id = consume_state(factory, state=state)
            if error:
                raise InvalidInput(f"the installation was cancelled in Slack ({error})")
            if not code:
                raise InvalidInput("Slack sent no authorization code: open the install link again")
            bot, scopes, installer, team_name = _exchange(settings, tenant_id=tenant_id, code=code)
            save_installation(factory, box=SecretBox.from_settings(settings), bot=bot, scopes=scopes,
                              installer_user_id=installer)
        except UserError as exc:
            return _page(400, "Threadline was not installed", str(exc))
        except SlackApiError as exc:
            log.info("slack refused the OAuth exchange", extra={"error": exc.response.get("error")})
            return _page(400, "Threadline was not installed", f"Slack refused: {exc.response.get('error')}")
        log.info("slack workspace installed", extra={"team": bot.team_id, "tenant_id": str(tenant_id)})
        resp = _page(200, "Threadline is installed",
                     f"Threadline is now connected to the Slack workspace {team_name or bot.team_id}. Invite "
                     "@threadline to your inboxes' channels; ticket threads appear there.")
        resp.delete_cookie(STATE_COOKIE, path="/slack", httponly=True, secure=secure_cookie, samesite="lax")
        return resp

    app.add_api_route("/slack/install", install, methods=["GET"], include_in_schema=False)
    app.add_api_route("/slack/oauth_redirect", oauth_redirect, methods=["GET"], include_in_schema=False)
