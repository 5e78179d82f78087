"""Held mail reaches Teams: one thread per inbox per day, a Release button that makes it a ticket."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select

from core.db.session import system_scope
from core.tickets.models import RawInbound, Ticket
from tests.bots.teams.conftest import CHANNEL, TeamsWorld
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs


def _auto_reply(n: int) -> bytes:
    return mail(sender=f"robot{n}@customer.test", subject=f"Automatic reply: away {n}",
                headers={"Auto-Submitted": "auto-replied"})


def test_held_mail_is_listed_in_one_thread_and_release_opens_a_ticket(teams_world: TeamsWorld) -> None:
    deliver(teams_world.runtime, _auto_reply(1))
    deliver(teams_world.runtime, _auto_reply(2))
    drain_jobs(teams_world.runtime)
    (thread,) = teams_world.fake.threads(CHANNEL)
    header, *items = (teams_world.fake.card_of(a) for a in teams_world.fake.thread(thread))
    assert "Held mail for help@acme.test" in json.dumps(header) and len(items) == 2
    (release,) = items[0]["actions"]
    assert release["verb"] == "tl_release_held"

    answer = teams_world.click("tl_release_held", release["data"], thread=thread)
    assert "Released by Ann Agent" in json.dumps(answer["value"])
    drain_jobs(teams_world.runtime)
    with system_scope(teams_world.runtime.factory) as session:
        (ticket,) = session.execute(select(Ticket)).scalars()
        raw = session.get_one(RawInbound, uuid.UUID(release["data"]["raw_id"]))
    assert ticket.subject.startswith("Automatic reply: away") and not raw.held and raw.released_by
