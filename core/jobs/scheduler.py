"""`threadline scheduler`: periodic maintenance (stale outbox rows now; SLA timers later)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from core.jobs.relay import requeue_stale
from core.runtime import Runtime

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=10)


def serve_scheduler(runtime: Runtime, *, stop: threading.Event, interval: float = 30.0) -> None:
    while not stop.is_set():
        try:
            requeued = requeue_stale(factory=runtime.factory, older_than=STALE_AFTER)
            if requeued:
                log.warning("re-sent outbox rows that were enqueued but never finished", extra={"rows": requeued})
        except Exception as exc:  # database briefly down: try again next tick
            log.warning("scheduler tick failed", extra={"error": str(exc)})
        stop.wait(interval)
