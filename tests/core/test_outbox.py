"""Outbox → relay → dramatiq on Redis → idempotent jobs, retries, dead letters."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import select

from core.db.session import system_scope, tenant_scope
from core.jobs.admin import retry_jobs
from core.jobs.broker import JobQueue, build_job_queue
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.outbox import record_events
from core.jobs.relay import relay_once
from core.jobs.worker import serve_worker
from core.registry import JobContext, Registry
from core.runtime import Runtime
from core.tickets import service
from core.tickets.events import EventKind
from core.tickets.models import Channel
from core.tickets.schemas import SYSTEM_ACTOR
from tests.conftest import make_tenant
from tests.core.factories import make_ticket
from tests.support.servers import RedisForTests


def _rows(rt: Runtime) -> list[OutboxRow]:
    with system_scope(rt.factory) as session:
        return list(session.execute(select(OutboxRow).order_by(OutboxRow.id)).scalars())


def _queued_outbox_ids(redis_url: str) -> list[int]:
    r = redis.Redis.from_url(redis_url)
    ids: list[int] = []
    for key in r.scan_iter("threadline:*.msgs"):
        for raw in r.hvals(key):
            ids.append(json.loads(raw)["args"][0])
    return ids


def _queue(rt: Runtime) -> JobQueue:
    assert rt.redis_url
    return build_job_queue(settings=rt.settings, redis_url=rt.redis_url, factory=rt.factory, registry=rt.registry)


@pytest.fixture()
def registry() -> Registry:
    """Only the jobs these tests register: plugins' subscriptions would add rows of their own."""
    return Registry()


@pytest.fixture()
def calls(runtime: Runtime) -> list[dict[str, Any]]:
    """A job subscribed to ticket.opened that records what it was asked to do."""
    seen: list[dict[str, Any]] = []

    def record(ctx: JobContext, payload: dict[str, Any]) -> None:
        seen.append({"tenant": ctx.tenant_id, **payload})

    runtime.registry.add_job("test.record", record)
    runtime.registry.subscribe(EventKind.TICKET_OPENED, "test.record")
    return seen


def test_events_become_outbox_rows_in_the_same_transaction(runtime: Runtime, calls: list[dict[str, Any]]) -> None:
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    rows = _rows(runtime)
    assert [(r.job, r.status, r.payload["ticket_id"]) for r in rows] == [
        ("test.record", OutboxStatus.PENDING, str(ticket_id))
    ]


def test_a_rolled_back_change_leaves_no_outbox_row(runtime: Runtime, calls: list[dict[str, Any]]) -> None:
    tenant, inbox = make_tenant(runtime)
    with pytest.raises(RuntimeError):
        with tenant_scope(runtime.factory, tenant.id) as session:
            out = service.open_ticket(session=session, tenant_id=tenant.id, inbox_id=inbox.id, subject="x",
                                      channel=Channel.API, contact_id=None, actor=SYSTEM_ACTOR)
            record_events(session=session, registry=runtime.registry, events=out.events)
            raise RuntimeError("the edge fails before commit")
    assert _rows(runtime) == []


def test_two_relays_racing_enqueue_each_row_exactly_once(runtime: Runtime, calls: list[dict[str, Any]]) -> None:
    tenant, inbox = make_tenant(runtime)
    for _ in range(120):
        make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    queues = [_queue(runtime), _queue(runtime)]

    def drain(queue: JobQueue) -> None:
        while relay_once(factory=runtime.factory, send=lambda r: queue.send(r.job, r.id, runtime.registry), batch=7).sent:
            pass

    threads = [threading.Thread(target=drain, args=(q,)) for q in queues]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runtime.redis_url
    queued = Counter(_queued_outbox_ids(runtime.redis_url))
    assert {r.id for r in _rows(runtime)} == set(queued)
    assert max(queued.values()) == 1
    assert {r.status for r in _rows(runtime)} == {OutboxStatus.ENQUEUED}


def test_redis_down_writes_commit_and_the_outbox_drains_later(
    runtime: Runtime, redis_server: RedisForTests, calls: list[dict[str, Any]]
) -> None:
    if redis_server._embedded is None:
        pytest.skip("needs the embedded Redis to stop and start it")
    tenant, inbox = make_tenant(runtime)
    queue = _queue(runtime)
    redis_server.stop()
    try:
        for _ in range(5):
            make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
        result = relay_once(factory=runtime.factory, send=lambda r: queue.send(r.job, r.id, runtime.registry))
        assert (result.sent, result.error is not None) == (0, True)
        assert [r.status for r in _rows(runtime)] == [OutboxStatus.PENDING] * 5
    finally:
        redis_server.restart()
    result = relay_once(factory=runtime.factory, send=lambda r: queue.send(r.job, r.id, runtime.registry))
    assert result.sent == 5
    assert runtime.redis_url
    assert sorted(_queued_outbox_ids(runtime.redis_url)) == [r.id for r in _rows(runtime)]


@pytest.fixture()
def running_worker(runtime: Runtime) -> Iterator[Callable[[], None]]:
    stop = threading.Event()
    thread = threading.Thread(target=serve_worker, args=(runtime,), kwargs={"stop": stop}, daemon=True)

    def start() -> None:
        thread.start()

    yield start
    stop.set()
    if thread.is_alive():
        thread.join(timeout=20)


def _wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_worker_runs_each_job_once_and_marks_it_done(
    runtime: Runtime, calls: list[dict[str, Any]], running_worker: Callable[[], None]
) -> None:
    tenant, inbox = make_tenant(runtime)
    ids = [make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)[0] for _ in range(10)]
    running_worker()
    _wait_for(lambda: all(r.status is OutboxStatus.DONE for r in _rows(runtime)) and len(calls) >= 10)
    time.sleep(0.3)
    assert sorted(c["ticket_id"] for c in calls) == sorted(str(i) for i in ids)
    assert {c["tenant"] for c in calls} == {tenant.id}


def test_a_duplicate_queue_message_does_not_run_the_job_twice(
    runtime: Runtime, calls: list[dict[str, Any]], running_worker: Callable[[], None]
) -> None:
    tenant, inbox = make_tenant(runtime)
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    queue = _queue(runtime)
    (row,) = _rows(runtime)
    for _ in range(3):  # e.g. the relay crashed after sending, and a requeue sent it again
        queue.send(row.job, row.id, runtime.registry)
    running_worker()
    _wait_for(lambda: _rows(runtime)[0].status is OutboxStatus.DONE)
    time.sleep(0.5)
    assert len(calls) == 1


def test_failing_job_retries_with_backoff_then_is_dead_lettered_and_can_be_retried(
    runtime: Runtime, running_worker: Callable[[], None]
) -> None:
    attempts: list[int] = []
    healthy = threading.Event()

    def flaky(ctx: JobContext, payload: dict[str, Any]) -> None:
        attempts.append(ctx.attempt)
        if not healthy.is_set():
            raise ConnectionError("slack unreachable")

    runtime.registry.add_job("test.flaky", flaky)
    runtime.registry.subscribe(EventKind.TICKET_OPENED, "test.flaky")
    tenant, inbox = make_tenant(runtime)
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    running_worker()
    _wait_for(lambda: _rows(runtime)[0].status is OutboxStatus.DEAD)
    (dead,) = _rows(runtime)
    assert attempts == [1, 2, 3]  # THREADLINE_JOB_MAX_RETRIES=2 in the test settings
    assert dead.last_error == "ConnectionError: slack unreachable"
    healthy.set()
    assert retry_jobs(factory=runtime.factory, ids=None) == 1
    _wait_for(lambda: _rows(runtime)[0].status is OutboxStatus.DONE)
    assert attempts[-1] == 1  # a fresh retry budget
