"""`threadline worker`: dramatiq worker threads plus an outbox relay thread in one process."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from dramatiq import Worker

from core.jobs.broker import build_job_queue
from core.jobs.lease import DEFAULT_LEASE
from core.jobs.models import OutboxRow
from core.jobs.relay import run_relay
from core.runtime import Runtime

log = logging.getLogger(__name__)

# An idle consumer (two: the one queue and its delay queue, see core/jobs/broker.py) polls Redis at
# most this often, each poll a Lua call and a heartbeat write: ~20 calls/s, and a job sent to an idle
# queue starts within 100 ms. (Sixteen consumers at 100 ms were ~210 calls/s and 8 % of a core.)
IDLE_POLL_MS = 100


def serve_worker(
    runtime: Runtime, *, stop: threading.Event, relay: bool = True, lease: timedelta = DEFAULT_LEASE
) -> None:
    redis_url = runtime.redis_url
    if redis_url is None:
        raise RuntimeError("worker needs Redis")
    queue = build_job_queue(
        settings=runtime.settings, redis_url=redis_url, factory=runtime.factory, registry=runtime.registry,
        lease=lease,
    )
    worker = Worker(queue.broker, worker_threads=runtime.settings.worker_threads, worker_timeout=IDLE_POLL_MS)
    worker.start()
    relay_thread: threading.Thread | None = None
    if relay:

        def send(row: OutboxRow) -> None:
            queue.send(row.job, row.id, runtime.registry)

        relay_thread = threading.Thread(
            target=run_relay, kwargs={"factory": runtime.factory, "send": send, "stop": stop},
            name="outbox-relay", daemon=True,
        )
        relay_thread.start()
    log.info("worker running", extra={"threads": runtime.settings.worker_threads, "relay": relay})
    stop.wait()
    if relay_thread is not None:
        relay_thread.join(timeout=5)
    # Running jobs get a few seconds to finish; unfinished ones keep their lease and are
    # re-sent by the scheduler when it expires (or redelivered by Redis and claimed then).
    worker.stop(timeout=8000)
    queue.broker.close()
