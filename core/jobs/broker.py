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


# One dramatiq queue for every job. Queues gave no isolation here (one worker's threads share one work
# queue), but each queue costs two idle consumers (the queue and its delay queue) polling Redis: with
# eight queues, a 1 s idle poll kept Redis calls low yet let a job sent to an idle queue wait up to a
# second per hop (mail -> card p95 737 ms in bench/slack_loop.py). One queue polls at 100 ms for the
# same idle cost.
QUEUE = "jobs"


@dataclass
class JobQueue:
    broker: RedisBroker
    actor: dramatiq.Actor

    def send(self, job: str, outbox_id: int, registry: Registry) -> None:
        self.actor.send(outbox_id)


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

    actor = dramatiq.Actor(
        _run,
        broker=broker,
        actor_name="run_outbox_job",
        queue_name=QUEUE,
        priority=0,
        # No dramatiq retries: the outbox row is the one retry chain (backoff via `available_at`);
        # a message that errors out (database down) leaves the row leased, and the scheduler
        # re-sends it when the lease expires.
        options={"max_retries": 0},
    )
    return JobQueue(broker, actor)
