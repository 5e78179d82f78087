"""Is a visitor looking at the chat? One Redis sorted set per conversation: socket id → expiry.

Each open socket refreshes its own member every HEARTBEAT seconds with an expiry TTL ahead, and
removes it when it closes; a crashed process's members simply expire. "Online" = any member not
yet expired, so two tabs, or two API processes, never mark each other offline.
"""

from __future__ import annotations

import logging
import time
import uuid

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

HEARTBEAT = 20  # seconds between refreshes by an open socket
TTL = 60  # a member not refreshed for this long is a socket that is gone


def key(conversation_id: uuid.UUID) -> str:
    return f"threadline:widget:presence:{conversation_id}"


async def beat(client: aioredis.Redis, conversation_id: uuid.UUID, socket_id: str) -> None:
    now = time.time()
    pipe = client.pipeline(transaction=False)
    pipe.zadd(key(conversation_id), {socket_id: now + TTL})
    pipe.zremrangebyscore(key(conversation_id), 0, now)
    pipe.expire(key(conversation_id), TTL)
    await pipe.execute()


async def leave(client: aioredis.Redis, conversation_id: uuid.UUID, socket_id: str) -> None:
    await client.zrem(key(conversation_id), socket_id)


def online(redis_url: str | None, conversation_id: uuid.UUID) -> bool:
    """Unknown (no Redis, or it fails) counts as offline: a mail too many beats a reply never seen."""
    if not redis_url:
        return False
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return int(client.zcount(key(conversation_id), time.time(), "+inf")) > 0
        finally:
            client.close()
    except redis.RedisError as exc:
        log.warning("widget presence unknown; treating the visitor as offline", extra={"error": str(exc)})
        return False
