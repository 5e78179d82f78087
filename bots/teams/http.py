"""POST /teams/messages on the API server: the Bot Framework's one endpoint for this bot.

Every request's JWT is verified first (401 and nothing reaches the core when it fails). An
accepted activity is stored with its job before the 200 (bots/teams/inbound.py), so nothing
answered is lost. Blocking work runs in threads so a slow database never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from bots.surface.deps import SurfaceDeps
from bots.teams.activity import parse
from bots.teams.app import build_teams_bot
from bots.teams.auth import TeamsAuthError
from core.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024  # an activity is at most ~100 KB; anything bigger is not from Teams


def mount_teams(app: Any, settings: Settings) -> None:
    if not (settings.teams_app_id and settings.teams_app_password):
        return  # Teams not configured: no endpoint
    runtime = app.state.runtime
    bot = build_teams_bot(SurfaceDeps(settings, runtime.factory, runtime.registry))

    async def messages(req: Request) -> Response:
        body = await req.body()
        if len(body) > MAX_BODY_BYTES:
            return Response(status_code=413)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return Response(status_code=400)
        service_url, channel_id = payload.get("serviceUrl"), payload.get("channelId")
        try:
            await asyncio.to_thread(bot.deps.verifier.verify, req.headers.get("authorization"),
                                    service_url=service_url if isinstance(service_url, str) else None,
                                    channel_id=channel_id if isinstance(channel_id, str) else None)
        except TeamsAuthError as exc:
            log.info("teams request refused", extra={"reason": str(exc)})
            return Response(status_code=401)
        try:
            incoming = parse(payload)
        except ValidationError:
            return Response(status_code=400)
        if incoming.type == "invoke":
            return JSONResponse(await asyncio.to_thread(bot.invoke, incoming, payload))
        await asyncio.to_thread(bot.accept, incoming, payload)  # committed before the answer
        return Response(status_code=200)

    app.add_api_route("/teams/messages", messages, methods=["POST"], include_in_schema=False)
    log.info("teams HTTP endpoint mounted")
