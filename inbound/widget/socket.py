"""`/widget/v1/socket`: live hints for one visitor. Only a hint: the page re-reads history.

Handshake: the Origin (or, from our frame, the `embed` query value) is checked against the
inbox named in the query before the socket is accepted. The token is not in the URL: the first
frame the client sends is `{"type": "auth", "token": ...}`; nothing is streamed before it checks out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid

import redis.asyncio as aioredis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from core.db.session import tenant_scope
from core.runtime import Runtime
from inbound.widget import presence, tokens
from inbound.widget.api import PREFIX, WidgetRefused, check_origin, key_of, load_inbox
from inbound.widget.fanout import Hub
from inbound.widget.models import WidgetConversation
from inbound.widget.tokens import TokenError

log = logging.getLogger(__name__)

AUTH_SECONDS = 10
# WebSocket close codes (RFC 6455 §7.4.2 private range): the client shows or acts on them.
CLOSE_ORIGIN, CLOSE_TOKEN, CLOSE_UNAVAILABLE = 4403, 4401, 4503

router = APIRouter(prefix=PREFIX)


def hub_of(websocket: WebSocket) -> Hub | None:
    hub: Hub | None = getattr(websocket.app.state, "widget_hub", None)
    runtime: Runtime = websocket.app.state.runtime
    if hub is None and runtime.redis_url:
        hub = websocket.app.state.widget_hub = Hub(runtime.redis_url)
    return hub


def presence_client(websocket: WebSocket) -> aioredis.Redis:
    """One pool per process for every socket's heartbeat (not a connection per socket)."""
    client: aioredis.Redis | None = getattr(websocket.app.state, "widget_presence", None)
    if client is None:
        runtime: Runtime = websocket.app.state.runtime
        client = websocket.app.state.widget_presence = aioredis.Redis.from_url(
            runtime.redis_url or "", socket_timeout=2, socket_connect_timeout=2)
    return client


async def _heartbeat(client: aioredis.Redis, conversation_id: uuid.UUID, socket_id: str) -> None:
    """Keeps this socket counted as present (offline visitors with an email get replies by mail)."""
    while True:
        await asyncio.sleep(presence.HEARTBEAT)
        try:
            await presence.beat(client, conversation_id, socket_id)
        except (aioredis.RedisError, OSError) as exc:
            log.warning("widget presence not refreshed", extra={"error": str(exc)})


async def _first_beat(client: aioredis.Redis, conversation_id: uuid.UUID, socket_id: str) -> None:
    # Before "ready": once the page sees it, a reply delivered now finds the visitor present.
    with contextlib.suppress(aioredis.RedisError, OSError, TimeoutError):
        await asyncio.wait_for(presence.beat(client, conversation_id, socket_id), timeout=2)


def _conversation_ok(runtime: Runtime, tenant_id: uuid.UUID, claims: tokens.VisitorClaims) -> bool:
    with tenant_scope(runtime.factory, tenant_id) as session:
        conversation = session.get(WidgetConversation, claims.conversation_id)
        return conversation is not None and conversation.token_version == claims.version


@router.websocket("/socket")
async def socket(websocket: WebSocket, inbox: str = "", embed: str | None = None) -> None:
    runtime: Runtime = websocket.app.state.runtime
    try:
        inbox_widget = await run_in_threadpool(load_inbox, runtime, uuid.UUID(inbox))
        check_origin(runtime.settings, inbox_widget, origin=websocket.headers.get("origin"), embed=embed)
    except (ValueError, WidgetRefused):
        await websocket.close(code=CLOSE_ORIGIN)  # before accept: the handshake is refused (HTTP 403)
        return
    hub = hub_of(websocket)
    await websocket.accept()
    try:
        first = json.loads(await asyncio.wait_for(websocket.receive_text(), timeout=AUTH_SECONDS))
        claims = tokens.verify(key_of(websocket.app), first.get("token") if isinstance(first, dict) else None)
        if claims.inbox_id != inbox_widget.inbox_id or not await run_in_threadpool(
            _conversation_ok, runtime, inbox_widget.tenant_id, claims
        ):
            raise TokenError("not this inbox's conversation")
    except (TimeoutError, ValueError, TokenError):
        await websocket.close(code=CLOSE_TOKEN)
        return
    except WebSocketDisconnect:
        return
    if hub is None:
        await websocket.close(code=CLOSE_UNAVAILABLE)  # no Redis: the page polls history instead
        return
    await hub.start()
    socket_id = uuid.uuid4().hex
    await _first_beat(presence_client(websocket), claims.conversation_id, socket_id)
    pulse = asyncio.create_task(_heartbeat(presence_client(websocket), claims.conversation_id, socket_id))
    with hub.listen(claims.conversation_id) as queue:
        await websocket.send_json({"type": "ready"})  # subscribed: the page now catches up by cursor
        reader = asyncio.create_task(_drain(websocket))
        try:
            while not reader.done():
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await websocket.send_json(getter.result())
                else:
                    getter.cancel()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            reader.cancel()
            pulse.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pulse
            with contextlib.suppress(aioredis.RedisError, OSError):
                await presence.leave(presence_client(websocket), claims.conversation_id, socket_id)


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes away; ends the stream loop."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
