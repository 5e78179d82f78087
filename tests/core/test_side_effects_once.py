"""Fault tests (issue 10): a worker process is SIGKILLed at each step of a side effect, a new
worker takes the row once its lease has expired, and the SMTP sink / the database count effects.

The killed worker is a fresh interpreter (tests/support/fault_worker.py) running the real runner; the "restart"
is the scheduler's requeue by expired lease followed by a fresh run in this process.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core import plugin as core_plugin
from core.db.session import system_scope, tenant_scope
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.relay import requeue_expired
from core.jobs.runner import JobFailed, RunResult, run_outbox_job
from core.registry import Registry
from core.runtime import Runtime
from core.settings import Settings
from core.tickets.models import DeliveryState, Message
from inbound.email import outbound, outbound_plugin
from tests.inbound.email.test_outbound import _reply, _settings, _ticket
from tests.support.fault_worker import KILL_POINTS, LEASE
from tests.support.smtp_sink import SmtpSink, smtp_sink  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

# Per kill point. A run is ~2 s (a fresh interpreter, a lease to expire, a second run); the suite runs 5,
# THREADLINE_FAULT_RUNS=50 runs the full count.
RUNS = int(os.environ.get("THREADLINE_FAULT_RUNS", "5"))


@pytest.fixture()
def settings(tmp_path: Path, smtp_sink: SmtpSink) -> Settings:  # noqa: F811
    return _settings(tmp_path, smtp_sink.url)


@pytest.fixture()
def registry() -> Registry:
    registry = Registry()
    core_plugin.register(registry)
    outbound_plugin.register(registry)
    return registry


# Mails at the sink and the reply's final state. At most once: a worker that died while the
# mail may have been handed over leaves a visible failure, never a second mail.
EXPECTED = {
    "before_intent": (1, DeliveryState.SENT),
    "before_smtp": (0, DeliveryState.FAILED),
    "after_250": (1, DeliveryState.FAILED),
    "after_commit": (1, DeliveryState.SENT),
}


def _killed_worker(rt: Runtime, outbox_id: int, kill_point: str, tmp_path: Path) -> int:
    """A fresh worker process that runs the job and dies at `kill_point`; returns its exit status."""
    url = rt.engine.url.render_as_string(hide_password=False)
    settings_file = tmp_path / "settings.pickle"
    if not settings_file.exists():
        settings_file.write_bytes(pickle.dumps(rt.settings))
    done = subprocess.run([sys.executable, "-m", "tests.support.fault_worker", str(settings_file), url,
                           str(outbox_id), kill_point], timeout=60, check=False)
    return done.returncode


def _restart(rt: Runtime, outbox_id: int) -> RunResult:
    time.sleep(LEASE.total_seconds() + 0.05)
    assert requeue_expired(factory=rt.factory) == 1
    try:
        return run_outbox_job(outbox_id, settings=rt.settings, factory=rt.factory, registry=rt.registry, lease=LEASE)
    except JobFailed:
        return RunResult.RETRY


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_a_worker_killed_at_any_step_of_a_send_gives_at_most_one_mail(
    runtime: Runtime, smtp_sink: SmtpSink, kill_point: str, tmp_path: Path  # noqa: F811
) -> None:
    mails, state = EXPECTED[kill_point]
    for run in range(RUNS):
        ids = _ticket(runtime)
        message_id, outbox_id = _reply(runtime, (ids[0], ids[1]))
        assert _killed_worker(runtime, outbox_id, kill_point, tmp_path) == -signal.SIGKILL
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
