"""The dramatiq broker on Redis and the one actor per queue that runs outbox jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.orm import Session, sessionmaker

from core.jobs.lease import DEFAULT_LEASE
from core.jobs.runner import JobFailed, run_outbox_job
from core.registry import Registry
from core.settings import Settings


@dataclass
class JobQueue:
    broker: RedisBroker
    actors: dict[str, dramatiq.Actor]  # queue name -> actor

    def send(self, job: str, outbox_id: int, registry: Registry) -> None:
        spec = registry.jobs.get(job)
        queue = spec.queue if spec else "default"
        self.actors[queue].send(outbox_id)


def build_job_queue(
    *, settings: Settings, redis_url: str, factory: sessionmaker[Session], registry: Registry,
    lease: timedelta = DEFAULT_LEASE,
) -> JobQueue:
    # socket timeouts: a dead Redis must fail the relay fast, not hang it.
    broker = RedisBroker(url=redis_url, socket_timeout=5, socket_connect_timeout=3, namespace="threadline")
    dramatiq.set_broker(broker)

    def _run(outbox_id: int) -> None:
        try:
            run_outbox_job(outbox_id, settings=settings, factory=factory, registry=registry, lease=lease)
        except JobFailed:
            pass  # recorded: the row is pending again with a backoff and the relay re-sends it

    actors: dict[str, dramatiq.Actor] = {}
    for queue in sorted({spec.queue for spec in registry.jobs.values()} | {"default"}):
        actors[queue] = dramatiq.Actor(
            _run,
            broker=broker,
            actor_name=f"run_outbox_job_{queue}",
            queue_name=queue,
            priority=0,
            # No dramatiq retries: the outbox row is the one retry chain (backoff via
            # `available_at`); a message that errors out (database down) leaves the row leased,
            # and the scheduler re-sends it when the lease expires.
            options={"max_retries": 0},
        )
    return JobQueue(broker, actors)
