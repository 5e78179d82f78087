"""HTTP mode: /slack/events, /slack/interactions, /slack/commands on the API server.

Bolt checks every request's signature and timestamp (401 when wrong or older than 5 minutes).
Dispatch runs in a thread so a slow database never blocks the event loop. With SLACK_CLIENT_ID
and SLACK_CLIENT_SECRET, /slack/install and /slack/oauth_redirect install the app per workspace,
and the endpoints serve every installed workspace even without SLACK_BOT_TOKEN.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import Request
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response

from bots.slack.app import build_slack_app
from bots.slack.installations import oauth_configured
from bots.slack.oauth import mount_oauth
from bots.surface.deps import SurfaceDeps
from core.settings import Settings

log = logging.getLogger(__name__)


def mount_slack(app: Any, settings: Settings) -> None:
    single, multi = settings.slack_bot_token is not None, oauth_configured(settings)
    if not (single or multi) or settings.slack_signing_secret is None:
        return  # Slack not configured (or Socket Mode only): no endpoints
    runtime = app.state.runtime
    bolt, _deps = build_slack_app(SurfaceDeps(settings, runtime.factory, runtime.registry))

    async def endpoint(req: Request) -> Any:
        body = await req.body()
        bolt_response = await asyncio.to_thread(bolt.dispatch, to_bolt_request(req, body))
        return to_starlette_response(bolt_response)

    for path in ("/slack/events", "/slack/interactions", "/slack/commands"):
        app.add_api_route(path, endpoint, methods=["POST"], include_in_schema=False)
    if multi:
        if single:
            log.warning("SLACK_BOT_TOKEN is set: every tenant uses it, workspaces installed over OAuth are not used")
        mount_oauth(app, settings, runtime.factory)
    log.info("slack HTTP endpoints mounted", extra={"oauth": multi})
