"""Per-key rate limits: a token bucket per API key, in Redis when the runtime has one.

Redis makes the limit hold across API processes; the bucket is updated by one Lua script using
Redis' own clock (API hosts' clocks may disagree). Without Redis (tests, a bare `threadline api`)
an in-process bucket does the same for one process. A Redis outage fails open: an unreachable
limiter must not take the API down with it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import redis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimit:
    burst: int = 120  # requests a key may send at once
    per_second: float = 10.0  # sustained rate

    def __post_init__(self) -> None:
        if self.burst < 1 or self.per_second <= 0:
            raise ValueError("a rate limit needs burst >= 1 and per_second > 0")


class Limiter(Protocol):
    def take(self, key: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        ...


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


class MemoryLimiter:
    def __init__(self, limit: RateLimit) -> None:
        self._limit = limit
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self._limit.burst), now))
            tokens = min(float(self._limit.burst), tokens + (now - last) * self._limit.per_second)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self._limit.per_second


_BUCKET_LUA = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisLimiter:
    def __init__(self, client: redis.Redis, limit: RateLimit, *, prefix: str = "threadline:ratelimit:") -> None:
        self._limit, self._prefix = limit, prefix
        self._script = client.register_script(_BUCKET_LUA)

    def take(self, key: str) -> float:
        try:
            result = self._script(keys=[self._prefix + key], args=[self._limit.burst, self._limit.per_second])
        except (redis.RedisError, OSError) as exc:
            log.warning("rate limiter unavailable, allowing the request", extra={"error": type(exc).__name__})
            return 0.0
        return float(result.decode() if isinstance(result, bytes) else result)


def make_limiter(limit: RateLimit, redis_url: str | None) -> Limiter:
    if redis_url:
        return RedisLimiter(redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1), limit)
    return MemoryLimiter(limit)
