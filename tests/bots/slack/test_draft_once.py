"""Fault tests for drafts (issue 10): a worker is SIGKILLed at each step from a customer message to
its draft card, a fresh run takes the row once its lease has expired, and the fake Slack and the
database count: one draft per customer message, one draft card in the thread.

The draft is made by `knowledge.draft` (row and key in one transaction) and posted by
`slack.draft_card` (intent, keyed post, recorded ts). The killed worker is a fresh interpreter
(tests/support/fault_worker.py) running the real runner with every plugin.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bots.slack.draft_tasks import DRAFT_CARD_JOB
from core.db.session import system_scope
from core.jobs.models import JobEffect, OutboxRow, OutboxStatus
from core.jobs.relay import requeue_expired
from core.jobs.runner import JobFailed, RunResult, run_outbox_job
from core.runtime import Runtime
from core.tickets.models import Direction, Draft, Message, SurfaceAnchor
from knowledge.draft_job import DRAFT_JOB
from tests.bots.slack.conftest import CHANNEL, SlackWorld
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.fault_worker import DRAFT_KILL_POINTS, DRAFT_LEASE
from tests.support.jobs import drain_jobs

pytestmark = pytest.mark.slow

# Per kill point, like tests/core/test_side_effects_once.py: 5 in the suite, THREADLINE_FAULT_RUNS=50 in full.
RUNS = int(os.environ.get("THREADLINE_FAULT_RUNS", "5"))


class ForkServer:
    """tests/support/fault_worker.py --serve: one fresh interpreter per test, one fork per run."""

    def __init__(self, rt: Runtime, tmp_path: Path) -> None:
        settings_file = tmp_path / "settings.pickle"
        settings_file.write_bytes(pickle.dumps(rt.settings))
        url = rt.engine.url.render_as_string(hide_password=False)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.fault_worker", "--serve",
                                      str(settings_file), url],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the fork server died"
        return line.strip()

    def start(self, outbox_id: int, point: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{outbox_id} {point}\n")
        self.proc.stdin.flush()

    def wait(self) -> tuple[int, str]:
        """(exit status, what the run printed): -9 when the kill point fired."""
        printed = ""
        while not (line := self._line()).startswith("exit "):
            printed = line
        return int(line.removeprefix("exit ")), printed

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture()
def workers(world: SlackWorld, tmp_path: Path) -> Iterator[ForkServer]:
    server = ForkServer(world.runtime, tmp_path)
    yield server
    server.close()


def _run(rt: Runtime, outbox_id: int) -> RunResult:
    try:
        return run_outbox_job(outbox_id, settings=rt.settings, factory=rt.factory, registry=rt.registry,
                              lease=DRAFT_LEASE)
    except JobFailed:
        return RunResult.RETRY


def _killed_then_restarted(rt: Runtime, workers: ForkServer, outbox_id: int, point: str) -> None:
    workers.start(outbox_id, point)
    assert workers.wait()[0] == -signal.SIGKILL
    time.sleep(DRAFT_LEASE.total_seconds() + 0.05)
    assert requeue_expired(factory=rt.factory) == 1  # by expired lease, the scheduler's way
    assert _run(rt, outbox_id) is RunResult.DONE


def _pending(rt: Runtime, job: str, ticket_id: uuid.UUID) -> int:
    with system_scope(rt.factory) as session:
        return session.execute(select(OutboxRow.id).where(
            OutboxRow.job == job, OutboxRow.status == OutboxStatus.PENDING,
            OutboxRow.payload["ticket_id"].astext == str(ticket_id))).scalar_one()


def _new_customer_message(world: SlackWorld, run: int) -> tuple[uuid.UUID, uuid.UUID]:
    """A new ticket whose card and customer message are in Slack; its draft job not yet run."""
    rt = world.runtime
    # One sender per run: the per-sender flood limit (30 mails in 10 minutes) would hold the 31st.
    result = deliver(rt, mail(subject=f"Repository locked ({uuid.uuid4().hex[:8]})", sender=f"bob{run}@customer.test",
                              message_id=f"<run{run}-{uuid.uuid4().hex}@customer.test>"))
    assert result.ticket_id is not None
    drain_jobs(rt, only=set(rt.registry.jobs) - {DRAFT_JOB})
    with system_scope(rt.factory) as session:
        message_id = session.execute(select(Message.id).where(
            Message.ticket_id == result.ticket_id, Message.direction == Direction.INBOUND)).scalar_one()
    return result.ticket_id, message_id


def _count(world: SlackWorld, ticket_id: uuid.UUID, message_id: uuid.UUID) -> tuple[int, int, str]:
    """(draft cards in the ticket's Slack thread, drafts for the message, final state)."""
    with system_scope(world.runtime.factory) as session:
        thread_ts = session.execute(select(SurfaceAnchor.thread_ref).where(
            SurfaceAnchor.ticket_id == ticket_id, SurfaceAnchor.surface == "slack")).scalar_one()
        drafts = list(session.execute(select(Draft).where(Draft.for_message_id == message_id)).scalars())
        keys = {f"{DRAFT_CARD_JOB}:{d.id}" for d in drafts}
        effects = session.execute(select(JobEffect.state).where(JobEffect.key.in_(keys))).scalars().all()
        unfinished = session.execute(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.payload["ticket_id"].astext == str(ticket_id),
            OutboxRow.status.not_in([OutboxStatus.DONE, OutboxStatus.DEAD]))).scalar_one()
    cards = [m for m in world.fake.messages(channel=CHANNEL, thread_ts=thread_ts)
             if ":robot_face: *" in json.dumps(m.get("blocks"))]
    posted = all(CHANNEL == (d.surface_refs or {}).get("slack", {}).get("channel") for d in drafts)
    state = "/".join([*(d.state.value for d in drafts), *(e.value for e in effects),
                      "card recorded" if posted else "card not recorded", f"{unfinished} jobs left"])
    return len(cards), len(drafts), state


# The KB is empty, so the draft is the "no answer" kind; it is a draft all the same.
EXPECTED = (1, 1, "no_answer/done/card recorded/0 jobs left")


@pytest.mark.parametrize("point", list(DRAFT_KILL_POINTS))
def test_a_worker_killed_at_any_step_of_a_draft_gives_one_draft_and_one_card(
    world: SlackWorld, workers: ForkServer, point: str
) -> None:
    rt = world.runtime
    table: list[tuple[int, int, str]] = []
    for run in range(RUNS):
        ticket_id, message_id = _new_customer_message(world, run)
        draft_row = _pending(rt, DRAFT_JOB, ticket_id)
        if point.startswith("draft_"):
            _killed_then_restarted(rt, workers, draft_row, point)
        else:
            assert _run(rt, draft_row) is RunResult.DONE
            _killed_then_restarted(rt, workers, _pending(rt, DRAFT_CARD_JOB, ticket_id), point)
        drain_jobs(rt)
        table.append(_count(world, ticket_id, message_id))
        assert (run, *table[-1]) == (run, *EXPECTED)
    print(f"\nFAULT {point}: {RUNS} runs, (cards, drafts, final state) -> {sorted(set(table))}")


def test_a_draft_job_that_outlives_its_lease_is_not_run_twice_at_the_same_time(
    world: SlackWorld, workers: ForkServer
) -> None:
    """The worker answers after three leases; the scheduler requeues and duplicates keep arriving."""
    rt = world.runtime
    ticket_id, message_id = _new_customer_message(world, 0)
    draft_row = _pending(rt, DRAFT_JOB, ticket_id)
    workers.start(draft_row, "slow_answer")
    deadline = time.monotonic() + 30
    while _status(rt, draft_row) is not OutboxStatus.RUNNING:  # the slow worker has claimed it
        assert time.monotonic() < deadline
        time.sleep(0.02)
    duplicates: list[RunResult] = []
    while _status(rt, draft_row) is OutboxStatus.RUNNING:
        requeue_expired(factory=rt.factory)
        duplicates.append(_run(rt, draft_row))
        time.sleep(0.03)
    assert workers.wait() == (0, f"result {RunResult.DONE.value}")
    assert len(duplicates) > 5 and set(duplicates) == {RunResult.SKIPPED}
    drain_jobs(rt)
    assert _count(world, ticket_id, message_id) == EXPECTED


def _status(rt: Runtime, outbox_id: int) -> OutboxStatus:
    with system_scope(rt.factory) as session:
        return session.get_one(OutboxRow, outbox_id).status
