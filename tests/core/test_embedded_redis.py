"""The embedded Redis: transport for jobs, snapshotted at a clean stop, no append-only file."""

from __future__ import annotations

from pathlib import Path

import redis

from core.infra.embedded import EmbeddedRedis


def test_idle_heartbeats_write_no_append_only_file_and_a_clean_stop_keeps_queued_jobs(tmp_path: Path) -> None:
    """Regression: dramatiq's heartbeat zadd on every poll grew the AOF by ~1 MB a minute on an idle install."""
    server = EmbeddedRedis(tmp_path)
    client = redis.Redis.from_url(server.start())
    for n in range(2000):
        client.zadd("threadline:__heartbeats__", {"worker-1": n})
    client.rpush("threadline:default", "job-1")
    client.close()
    server.stop()
    restarted = redis.Redis.from_url(server.start())
    try:
        kept = restarted.lrange("threadline:default", 0, -1)
    finally:
        restarted.close()
        server.stop()
    assert (sorted(p.name for p in tmp_path.glob("appendonly*")), kept) == ([], [b"job-1"])
