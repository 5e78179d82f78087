"""Live hints over Redis pub/sub: any API process can hold any visitor's socket.

A hint is `{"conversation_id": ..., "seq": N}` (the page then asks for history after it) or
`{"conversation_id": ..., "status": "resolved"}` (the ticket's status changed). Losing a hint
(Redis restart, a socket that dropped) loses no message: Postgres is
the truth and every (re)connect catches up by cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

PREFIX = "threadline:widget:"


def channel(conversation_id: uuid.UUID) -> str:
    return f"{PREFIX}{conversation_id}"


def publish(redis_url: str, *, conversation_id: uuid.UUID, seq: int | None = None, status: str | None = None) -> None:
    """Best effort, after commit: a lost hint only delays the visitor until their next catch-up."""
    hint: dict[str, Any] = {"conversation_id": str(conversation_id)}
    hint.update({"seq": seq} if seq is not None else {"status": status})
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.publish(channel(conversation_id), json.dumps(hint))
        finally:
            client.close()
    except redis.RedisError as exc:
        log.warning("widget hint not published", extra={"conversation_id": str(conversation_id), "error": str(exc)})


class Hub:
    """One pattern subscription per process; hints are routed to this process's sockets in memory."""

    def __init__(self, redis_url: str) -> None:
        self._url = redis_url
        self._queues: dict[uuid.UUID, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @contextlib.contextmanager
    def listen(self, conversation_id: uuid.UUID) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self._queues.setdefault(conversation_id, set()).add(queue)
        try:
            yield queue
        finally:
            listeners = self._queues.get(conversation_id)
            if listeners is not None:
                listeners.discard(queue)
                if not listeners:
                    del self._queues[conversation_id]

    async def start(self) -> None:
        """Idempotent; returns once subscribed, so a hint published after it reaches us."""
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="widget-hub")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=3)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                client = aioredis.Redis.from_url(self._url)
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(f"{PREFIX}*")
                    self._ready.set()
                    async for item in pubsub.listen():
                        if item.get("type") == "pmessage":
                            self._route(item["data"])
            except asyncio.CancelledError:
                raise
            except (aioredis.RedisError, OSError) as exc:
                # Sockets stay open; clients poll history meanwhile and catch up on reconnect.
                log.warning("widget hub lost Redis; retrying", extra={"error": str(exc)})
                await asyncio.sleep(1)

    def _route(self, data: bytes | str) -> None:
        try:
            hint = json.loads(data)
            conversation_id = uuid.UUID(hint["conversation_id"])
            frame: dict[str, Any] = (
                {"type": "message", "seq": int(hint["seq"])} if "seq" in hint
                else {"type": "status", "status": str(hint["status"])[:32]}
            )
        except (ValueError, KeyError, TypeError):
            return
        for queue in tuple(self._queues.get(conversation_id, ())):
            with contextlib.suppress(asyncio.QueueFull):  # a stuck socket: it catches up by cursor anyway
                queue.put_nowait(frame)
