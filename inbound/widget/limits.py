"""Rate limits for the public widget API: per visitor token, per IP and per inbox.

Fixed one-minute windows in Redis (INCR + EXPIRE). The per-IP limit is generous because many
honest visitors can share one NAT address; the per-token limit is what stops one chatty script.
Redis unreachable: the request goes through (the ingest rate cap still quarantines floods), so an
outage never silences customers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)

WINDOW = 60


@dataclass(frozen=True)
class Limit:
    scope: str  # "token", "ip", "inbox"
    per_minute: int


MESSAGE_LIMITS = (Limit("token", 20), Limit("ip", 120), Limit("inbox", 1200))
START_LIMITS = (Limit("ip", 30), Limit("inbox", 600))
UPLOAD_LIMITS = (Limit("token", 10), Limit("ip", 60), Limit("inbox", 600))


class RateLimitedError(Exception):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


_WHO = {"token": "from this chat", "ip": "from your network", "inbox": "to this support team"}


def check(client: redis.Redis | None, limits: tuple[Limit, ...], keys: dict[str, str], *,
          action: str = "messages") -> None:
    """Count this request in each scope; raise RateLimitedError (readable, with Retry-After) past a limit."""
    if client is None:
        return
    window = int(time.time()) // WINDOW
    try:
        pipe = client.pipeline(transaction=False)
        for limit in limits:
            key = f"threadline:widget:rl:{action}:{limit.scope}:{keys[limit.scope]}:{window}"
            pipe.incr(key)
            pipe.expire(key, WINDOW * 2)
        counts = pipe.execute()[::2]
    except redis.RedisError as exc:
        log.warning("widget rate limits unavailable; letting the request through", extra={"error": str(exc)})
        return
    for limit, count in zip(limits, counts, strict=True):
        if int(count) > limit.per_minute:
            wait = WINDOW - int(time.time()) % WINDOW
            raise RateLimitedError(
                f"Too many {action} {_WHO[limit.scope]} right now. Please wait {wait} seconds and try again.", wait
            )
