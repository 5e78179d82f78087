"""`threadline scheduler`: periodic maintenance (expired job leases now; SLA timers later)."""

from __future__ import annotations

import logging
import threading

from core.jobs.relay import requeue_expired
from core.retention.service import maybe_run_retention
from core.runtime import Runtime

log = logging.getLogger(__name__)

def serve_scheduler(runtime: Runtime, *, stop: threading.Event, interval: float = 15.0) -> None:
    while not stop.is_set():
        try:
            # By expired lease only: a row a live worker holds is never sent twice.
            requeued = requeue_expired(factory=runtime.factory)
            if requeued:
                log.warning("re-sent outbox rows whose lease expired", extra={"rows": requeued})
            maybe_run_retention(runtime.factory, runtime.settings)  # hourly, small batches (core/retention)
        except Exception as exc:  # database briefly down: try again next tick
            log.warning("scheduler tick failed", extra={"error": str(exc)})
        stop.wait(interval)
