"""Fault tests (issue 10): a worker SIGKILLed at each step of a Slack thread post, then the job run
again once its lease expired, leaves one ticket card and one thread post per message."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update

from bots.slack.tasks import SYNC_JOB
from core.db.session import system_scope
from core.jobs.models import OutboxRow
from core.jobs.relay import requeue_expired
from core.jobs.runner import JobFailed, run_outbox_job
from core.runtime import Runtime
from core.surfaces.models import SurfacePost
from core.tenancy.models import Inbox
from tests.bots.slack.conftest import CHANNEL
from tests.bots.slack.fault_worker import KILL_POINTS
from tests.conftest import make_tenant
from tests.core.factories import make_ticket
from tests.support.fake_slack import FakeSlack
from tests.support.fault_worker import LEASE

pytestmark = pytest.mark.slow

# Per kill point; a run is a fresh interpreter, a lease to expire and a second run (~3 s).
# THREADLINE_FAULT_RUNS=50 runs the full count.
RUNS = int(os.environ.get("THREADLINE_FAULT_RUNS", "2"))


@pytest.fixture()
def slack_runtime(runtime: Runtime, fake_slack: FakeSlack) -> Runtime:
    runtime.settings.slack_bot_token = SecretStr("xoxb-test-token")
    runtime.settings.slack_api_url = fake_slack.api_url
    return runtime


def _sync_row(rt: Runtime, tenant_id: uuid.UUID, inbox_id: uuid.UUID) -> int:
    ticket_id, _number = make_ticket(rt, tenant_id=tenant_id, inbox_id=inbox_id)
    with system_scope(rt.factory) as session:
        rows = session.execute(select(OutboxRow).where(OutboxRow.job == SYNC_JOB).order_by(OutboxRow.id)).scalars()
        return [r.id for r in rows if r.payload.get("ticket_id") == str(ticket_id)][0]


def _killed_worker(rt: Runtime, outbox_id: int, kill_point: str, tmp_path: Path) -> int:
    settings_file = tmp_path / "settings.pickle"
    if not settings_file.exists():
        settings_file.write_bytes(pickle.dumps(rt.settings))
    url = rt.engine.url.render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, "-m", "tests.bots.slack.fault_worker", str(settings_file), url,
                           str(outbox_id), kill_point], timeout=60, check=False)
    return done.returncode


def _restart(rt: Runtime, outbox_id: int) -> None:
    time.sleep(LEASE.total_seconds() + 0.05)
    assert requeue_expired(factory=rt.factory) == 1
    try:
        run_outbox_job(outbox_id, settings=rt.settings, factory=rt.factory, registry=rt.registry, lease=LEASE)
    except JobFailed:
        pass


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_a_worker_killed_at_any_step_of_a_thread_post_leaves_one_card_and_one_post(
    slack_runtime: Runtime, fake_slack: FakeSlack, kill_point: str, tmp_path: Path
) -> None:
    rt, fake = slack_runtime, fake_slack
    tenant, inbox = make_tenant(rt)
    for run in range(RUNS):
        channel = f"{CHANNEL}{run}"
        with system_scope(rt.factory) as session:
            session.execute(update(Inbox).where(Inbox.id == inbox.id).values(slack_channel_id=channel))
        outbox_id = _sync_row(rt, tenant.id, inbox.id)
        assert _killed_worker(rt, outbox_id, kill_point, tmp_path) == -signal.SIGKILL
        _restart(rt, outbox_id)
        cards = [m for m in fake.messages(channel=channel) if m["thread_ts"] is None]
        posts = fake.messages(channel=channel, thread_ts=cards[0]["ts"]) if cards else []
        replies = [m for m in posts if m["ts"] != cards[0]["ts"]]
        assert (run, len(cards), len(replies)) == (run, 1, 1)
    with system_scope(rt.factory) as session:
        recorded = session.execute(select(func.count()).select_from(SurfacePost)).scalar_one()
    assert recorded == RUNS
