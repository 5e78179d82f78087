"""Concurrent sync jobs of one ticket post its card and messages once each (regression: the Teams
loop bench found duplicate cards when two jobs raced around a slow Bot Connector)."""

from __future__ import annotations

import threading

from sqlalchemy import select

from core.db.session import system_scope
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.runner import RunResult, run_outbox_job
from tests.bots.teams.conftest import CHANNEL, TeamsWorld
from tests.inbound.ingest.helpers import deliver, mail


def test_racing_sync_jobs_post_the_card_and_the_message_once(teams_world: TeamsWorld) -> None:
    rt = teams_world.runtime
    deliver(rt, mail(message_id="<race@customer.test>", body="first words"))
    with system_scope(rt.factory) as session:
        ids = list(session.execute(select(OutboxRow.id).where(OutboxRow.job == "teams.sync_thread",
                                                               OutboxRow.status == OutboxStatus.PENDING)).scalars())
    teams_world.fake.delay_seconds = 0.4
    results: list[RunResult] = []
    threads = [threading.Thread(target=lambda i=i: results.append(run_outbox_job(
        i, settings=rt.settings, factory=rt.factory, registry=rt.registry))) for i in ids * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (thread,) = teams_world.fake.threads(CHANNEL)
    assert len(teams_world.fake.thread(thread)) == 2  # the card and the customer's message
    assert RunResult.RETRY not in results
