"""Fault tests (issues 10 and 13): a worker SIGKILLed between a keyed post and its record, then the job
run again once its lease expired, leaves exactly one post, on Slack and on Teams: the draft card, the
delivery failure line, and the held-mail thread of the day and its item.

The worker is a fresh interpreter (tests/bots/post_fault_worker.py) that dies at the Nth keyed post on
the wire; each fake counts the posts carrying the key (Slack message metadata, the Teams marker).
"""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bots.slack import draft_tasks as slack_drafts
from bots.slack import held as slack_held
from bots.slack import tasks as slack_tasks
from bots.surface.post_once import failure_key
from bots.teams import cards
from bots.teams import draft_tasks as teams_drafts
from bots.teams import held as teams_held
from bots.teams import tasks as teams_tasks
from core.db.session import system_scope, tenant_scope
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.outbox import record_events
from core.jobs.relay import requeue_expired
from core.jobs.runner import JobFailed, RunResult, run_outbox_job
from core.runtime import Runtime
from core.tickets import drafts, service
from core.tickets.models import Direction, Draft, Message, RawInbound, Ticket
from knowledge.draft_job import DRAFT_JOB
from tests.bots.slack.conftest import fake_slack, world  # noqa: F401 (fixtures)
from tests.bots.teams.conftest import fake_teams, jwt_issuer, teams_world  # noqa: F401 (fixtures)
from tests.bots.test_surfaces import SlackSurface, Surface, TeamsSurface, surface  # noqa: F401 (fixture)
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.fault_worker import DRAFT_LEASE
from tests.support.jobs import drain_jobs
from tests.support.smtp_sink import smtp_sink  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

JOBS = {  # (draft card, delivery notice, held mail) per surface
    "slack": (slack_drafts.DRAFT_CARD_JOB, slack_tasks.DELIVERY_JOB, slack_held.HELD_JOB),
    "teams": (teams_drafts.DRAFT_CARD_JOB, teams_tasks.DELIVERY_JOB, teams_held.HELD_JOB),
}


def _keyed_posts(s: Surface, key: str) -> int:
    """How many posts on the surface carry `key`."""
    if isinstance(s, SlackSurface):
        return sum((m.get("metadata") or {}).get("event_payload", {}).get("key") == key for m in s.w.fake.messages())
    assert isinstance(s, TeamsSurface)  # posts made (answered, or with the answer lost); updates drop the marker
    marker = cards.marker(key)
    return sum(c.op in ("create_conversation", "send") and c.status < 300 and marker in json.dumps(c.body)
               for c in s.w.fake.calls)


def _pending(rt: Runtime, job: str) -> int:
    with system_scope(rt.factory) as session:
        rows = session.execute(select(OutboxRow.id).where(OutboxRow.job == job, OutboxRow.status ==
                                                          OutboxStatus.PENDING).order_by(OutboxRow.id)).scalars()
        return list(rows)[0]


def _killed_then_recovered(rt: Runtime, outbox_id: int, point: str, tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.pickle"
    settings_file.write_bytes(pickle.dumps(rt.settings))
    url = rt.engine.url.render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, "-m", "tests.bots.post_fault_worker", str(settings_file), url,
                           str(outbox_id), point], timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL
    time.sleep(DRAFT_LEASE.total_seconds() + 0.05)
    assert requeue_expired(factory=rt.factory) == 1  # by expired lease, the scheduler's way
    try:
        result = run_outbox_job(outbox_id, settings=rt.settings, factory=rt.factory, registry=rt.registry,
                                lease=DRAFT_LEASE)
    except JobFailed:
        result = RunResult.RETRY
    assert result is RunResult.DONE
    drain_jobs(rt, include_delayed=True)


def _customer_writes(s: Surface, *, but: set[str]) -> str:
    deliver(s.runtime, mail(sender="bob@customer.test", message_id="<once1@customer.test>",
                            body="restic says the repository is locked"))
    drain_jobs(s.runtime, only=set(s.runtime.registry.jobs) - but)
    return s.thread()


def test_a_draft_card_is_posted_once_when_its_worker_dies_after_the_post(
    surface: Surface, tmp_path: Path  # noqa: F811
) -> None:
    """(Dying before the post is tests/bots/slack/test_draft_once.py's card_before_post: the same shared path.)"""
    card_job = JOBS[surface.name][0]
    _customer_writes(surface, but={DRAFT_JOB, card_job})
    with system_scope(surface.runtime.factory) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    with tenant_scope(surface.runtime.factory, ticket.tenant_id) as session:
        out = drafts.propose(session=session, ticket=service.get_ticket(session=session, ticket_id=ticket.id),
                             for_message_id=None, text="Run `restic unlock`, then retry the backup.",
                             citations=[], confidence=0.82, answered=True)
        record_events(session=session, registry=surface.runtime.registry, events=out.events)
    _killed_then_recovered(surface.runtime, _pending(surface.runtime, card_job), "after:1", tmp_path)
    with system_scope(surface.runtime.factory) as session:
        refs = session.get_one(Draft, out.value.id).surface_refs
    assert (_keyed_posts(surface, f"{card_job}:{out.value.id}"), sorted(refs)) == (1, [surface.name])


def test_a_delivery_failure_is_said_once_when_its_worker_dies_after_the_post(
    surface: Surface, tmp_path: Path  # noqa: F811
) -> None:
    notice_job = JOBS[surface.name][1]
    thread = _customer_writes(surface, but={DRAFT_JOB})
    surface.sink.refuse_next(1, code=550, text="5.1.1 mailbox unavailable", stage="rcpt")
    surface.agent_says("Here is the fix.", thread=thread, message=6)
    drain_jobs(surface.runtime, only=set(surface.runtime.registry.jobs) - {DRAFT_JOB, notice_job},
               include_delayed=True)
    with system_scope(surface.runtime.factory) as session:
        reply = session.execute(select(Message.id).where(Message.direction == Direction.OUTBOUND)).scalar_one()
    _killed_then_recovered(surface.runtime, _pending(surface.runtime, notice_job), "after:1", tmp_path)
    assert _keyed_posts(surface, failure_key(notice_job, reply)) == 1
    assert sum("not delivered" in t for t in surface.thread_text(thread)) == 1


@pytest.mark.parametrize("point", ["after:1", "after:2"])  # the day's thread opened / the held mail posted
def test_held_mail_opens_one_thread_of_the_day_and_posts_once_whenever_its_worker_dies(
    surface: Surface, point: str, tmp_path: Path  # noqa: F811
) -> None:
    held_job = JOBS[surface.name][2]
    deliver(surface.runtime, mail(sender="robot@customer.test", subject="Automatic reply: away",
                                  headers={"Auto-Submitted": "auto-replied"}))
    drain_jobs(surface.runtime, only=set(surface.runtime.registry.jobs) - {held_job})
    _killed_then_recovered(surface.runtime, _pending(surface.runtime, held_job), point, tmp_path)
    with system_scope(surface.runtime.factory) as session:
        raw = session.execute(select(RawInbound)).scalar_one()
    day_key = f"{held_job}:{raw.inbox_id}:{raw.received_at.date().isoformat()}"
    assert (_keyed_posts(surface, day_key), _keyed_posts(surface, f"{held_job}:{raw.id}")) == (1, 1)
    assert (sorted(raw.surface_refs), raw.surface_refs[surface.name]["day"]) == ([surface.name], day_key[-10:])
