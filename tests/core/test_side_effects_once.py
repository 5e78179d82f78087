"""Fault tests (issue 10): a worker process is SIGKILLed at each step of a side effect, a new
worker takes the row once its lease has expired, and the SMTP sink / the database count effects.

The killed worker is a forked child running the real runner with its own engine; the "restart"
is the scheduler's requeue by expired lease followed by a fresh run in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core import plugin as core_plugin
from core.db.session import make_engine, make_session_factory, system_scope, tenant_scope
from core.jobs import lease as leases
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.relay import requeue_expired
from core.jobs.runner import JobFailed, RunResult, run_outbox_job
from core.registry import Registry
from core.runtime import Runtime
from core.settings import Settings
from core.tickets.models import DeliveryState, Message
from inbound.email import outbound, outbound_plugin
from tests.inbound.email.test_outbound import _reply, _settings, _ticket
from tests.support.smtp_sink import SmtpSink, smtp_sink  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

LEASE = timedelta(milliseconds=300)
RUNS = 50  # per kill point; one run is ~0.5 s (a fork, a lease to expire, a second run)


@pytest.fixture()
def settings(tmp_path: Path, smtp_sink: SmtpSink) -> Settings:  # noqa: F811
    return _settings(tmp_path, smtp_sink.url)


@pytest.fixture()
def registry() -> Registry:
    registry = Registry()
    core_plugin.register(registry)
    outbound_plugin.register(registry)
    return registry


def _die(*_args: Any, **_kwargs: Any) -> Any:
    os.kill(os.getpid(), signal.SIGKILL)


def _after(original: Callable[..., Any]) -> Callable[..., Any]:
    def call_then_die(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        _die()

    return call_then_die


# Where the worker dies, as (module, attribute, replacement) patched in the child only.
KILL_POINTS: dict[str, Callable[[], None]] = {
    # inside the intent transaction, before `sending` commits
    "before_intent": lambda: setattr(outbound, "relay_from_settings", _die),
    # `sending` committed, the SMTP session not started
    "before_smtp": lambda: setattr(outbound, "send_letter", _die),
    # the relay answered 250, `sent` not committed
    "after_250": lambda: setattr(outbound, "send_letter", _after(outbound.send_letter)),
    # `sent` committed, the outbox row not finished
    "after_commit": lambda: setattr(leases, "finish", _die),
}
# Mails at the sink and the reply's final state. At most once: a worker that died while the
# mail may have been handed over leaves a visible failure, never a second mail.
EXPECTED = {
    "before_intent": (1, DeliveryState.SENT),
    "before_smtp": (0, DeliveryState.FAILED),
    "after_250": (1, DeliveryState.FAILED),
    "after_commit": (1, DeliveryState.SENT),
}


def _killed_worker(rt: Runtime, outbox_id: int, kill_point: str) -> int:
    """Fork a worker that runs the job and dies at `kill_point`; returns its exit status."""
    url = rt.engine.url.render_as_string(hide_password=False)

    def child() -> None:
        factory = make_session_factory(make_engine(url, pool_size=1))
        KILL_POINTS[kill_point]()
        try:
            run_outbox_job(outbox_id, settings=rt.settings, factory=factory, registry=rt.registry, lease=LEASE)
        finally:
            os._exit(3)  # not reached when the kill point fired

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(timeout=30)
    return process.exitcode if process.exitcode is not None else 99


def _restart(rt: Runtime, outbox_id: int) -> RunResult:
    time.sleep(LEASE.total_seconds() + 0.05)
    assert requeue_expired(factory=rt.factory) == 1
    try:
        return run_outbox_job(outbox_id, settings=rt.settings, factory=rt.factory, registry=rt.registry, lease=LEASE)
    except JobFailed:
        return RunResult.RETRY


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_a_worker_killed_at_any_step_of_a_send_gives_at_most_one_mail(
    runtime: Runtime, smtp_sink: SmtpSink, kill_point: str  # noqa: F811
) -> None:
    mails, state = EXPECTED[kill_point]
    for run in range(RUNS):
        ids = _ticket(runtime)
        message_id, outbox_id = _reply(runtime, (ids[0], ids[1]))
        assert _killed_worker(runtime, outbox_id, kill_point) == -signal.SIGKILL
        _restart(runtime, outbox_id)
        with tenant_scope(runtime.factory, ids[0]) as session:
            message = session.get_one(Message, message_id)
        arrived = [m for m in smtp_sink.mails if m.message["Message-ID"] == f"<{message.email_message_id}>"]
        assert (run, len(arrived), message.delivery_state) == (run, mails, state)
        if state is DeliveryState.FAILED:
            assert message.delivery_error == outbound.IN_DOUBT
    with system_scope(runtime.factory) as session:  # nothing left leased or pending
        left = session.execute(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.job == outbound.DELIVER_JOB, OutboxRow.status.not_in([OutboxStatus.DONE, OutboxStatus.DEAD])
        )).scalar_one()
    assert left == 0
