"""The dramatiq broker on Redis and the one actor per queue that runs outbox jobs."""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.orm import Session, sessionmaker

from core.jobs.runner import run_outbox_job
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
    *, settings: Settings, redis_url: str, factory: sessionmaker[Session], registry: Registry
) -> JobQueue:
    # socket timeouts: a dead Redis must fail the relay fast, not hang it.
    broker = RedisBroker(url=redis_url, socket_timeout=5, socket_connect_timeout=3, namespace="threadline")
    dramatiq.set_broker(broker)

    def _run(outbox_id: int) -> None:
        run_outbox_job(outbox_id, settings=settings, factory=factory, registry=registry)

    actors: dict[str, dramatiq.Actor] = {}
    for queue in sorted({spec.queue for spec in registry.jobs.values()} | {"default"}):
        actors[queue] = dramatiq.Actor(
            _run,
            broker=broker,
            actor_name=f"run_outbox_job_{queue}",
            queue_name=queue,
            priority=0,
            options={
                # One more than ours: the runner dead-letters first and records why.
                "max_retries": settings.job_max_retries + 1,
                "min_backoff": settings.job_min_backoff_ms,
                "max_backoff": 5 * 60 * 1000,
            },
        )
    return JobQueue(broker, actors)
