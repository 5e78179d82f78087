"""The idle relay sleeps on LISTEN: a committed job wakes it at once, a delayed one when it is due,
a rolled-back one never, and so do rows made pending again (operator retry, expired lease);
the slow fallback poll is not what delivers them."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from core.db.session import system_scope
from core.jobs.admin import retry_jobs
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.outbox import enqueue
from core.jobs.relay import requeue_expired, run_relay
from core.registry import Registry
from core.runtime import Runtime
from tests.conftest import make_tenant

FALLBACK = 30.0  # twice any wait below: a pass this test sees came from a NOTIFY or a due time
# Generous on purpose (a loaded CI machine stretches everything): what matters is well before FALLBACK.
PROMPT = 15.0


class Relay:
    def __init__(self, runtime: Runtime) -> None:
        self.sent: list[tuple[int, float]] = []
        self.got = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=run_relay, kwargs={
            "factory": runtime.factory, "send": self._send, "stop": self.stop, "fallback_poll": FALLBACK})

    def _send(self, row: OutboxRow) -> None:
        self.sent.append((row.id, time.monotonic()))
        self.got.set()


@pytest.fixture()
def registry() -> Registry:
    """No plugin jobs: only the rows these tests enqueue."""
    return Registry()


@pytest.fixture()
def tenant_id(runtime: Runtime) -> uuid.UUID:
    return make_tenant(runtime)[0].id


@pytest.fixture()
def relay(runtime: Runtime, tenant_id: uuid.UUID) -> Iterator[Relay]:
    r = Relay(runtime)
    r.thread.start()
    time.sleep(0.3)  # its first (empty) pass, then it listens
    yield r
    r.stop.set()
    r.thread.join(timeout=5)
    assert not r.thread.is_alive()


def _enqueue(runtime: Runtime, tenant_id: uuid.UUID, *, delay: float = 0, commit: bool = True) -> float:
    try:
        with system_scope(runtime.factory) as session:
            enqueue(session=session, tenant_id=tenant_id, job="test.noop", payload={}, delay_seconds=delay)
            if not commit:
                raise RuntimeError("roll back")
    except RuntimeError:
        pass
    return time.monotonic()


def test_a_committed_job_wakes_the_idle_relay_at_once(runtime: Runtime, tenant_id: uuid.UUID, relay: Relay) -> None:
    at = _enqueue(runtime, tenant_id)
    assert relay.got.wait(PROMPT)
    assert relay.sent[0][1] - at < PROMPT


def test_a_rolled_back_job_sends_nothing_and_a_delayed_one_goes_when_due(
    runtime: Runtime, tenant_id: uuid.UUID, relay: Relay
) -> None:
    _enqueue(runtime, tenant_id, commit=False)
    at = _enqueue(runtime, tenant_id, delay=1.0)
    assert relay.got.wait(PROMPT + 1)
    waited = relay.sent[0][1] - at
    assert len(relay.sent) == 1 and 0.9 < waited < PROMPT


def _stored(runtime: Runtime, tenant_id: uuid.UUID, **values: object) -> int:
    """A row written without `enqueue`, so without a NOTIFY: the idle relay does not see it."""
    with system_scope(runtime.factory) as session:
        row = OutboxRow(tenant_id=tenant_id, job="test.noop", payload={}, **values)
        session.add(row)
        session.flush()
        return row.id


def test_an_operator_retry_of_a_dead_job_wakes_the_idle_relay_at_once(
    runtime: Runtime, tenant_id: uuid.UUID, relay: Relay
) -> None:
    """Regression: `jobs retry` sent no NOTIFY, so the job waited for the relay's fallback poll."""
    dead = _stored(runtime, tenant_id, status=OutboxStatus.DEAD, attempts=3)
    at = time.monotonic()
    assert retry_jobs(factory=runtime.factory, ids=[dead]) == 1
    assert relay.got.wait(PROMPT)
    assert relay.sent[0][0] == dead and relay.sent[0][1] - at < PROMPT


def test_a_job_requeued_for_an_expired_lease_wakes_the_idle_relay_at_once(
    runtime: Runtime, tenant_id: uuid.UUID, relay: Relay
) -> None:
    """Regression: the scheduler's requeue sent no NOTIFY, so the job waited for the fallback poll."""
    lost = _stored(runtime, tenant_id, status=OutboxStatus.ENQUEUED,
                   lease_until=datetime.now(UTC) - timedelta(minutes=1))
    at = time.monotonic()
    assert requeue_expired(factory=runtime.factory) == 1
    assert relay.got.wait(PROMPT)
    assert relay.sent[0][0] == lost and relay.sent[0][1] - at < PROMPT


def test_stop_ends_a_listening_relay_promptly(runtime: Runtime) -> None:
    r = Relay(runtime)
    r.thread.start()
    time.sleep(0.3)
    stopped = time.monotonic()
    r.stop.set()
    r.thread.join(timeout=5)
    assert not r.thread.is_alive() and time.monotonic() - stopped < 1.5
